import assert from "node:assert/strict";
import { parseBrokerArgs } from "../../src/cli/broker.ts";
import { UsageError } from "../../src/cli/common.ts";

Deno.test("rill broker: defaults serve 127.0.0.1:8092 (Kafka 127.0.0.1:9092) with data under ./data", () => {
  assert.deepEqual(parseBrokerArgs([]), {
    id: 1,
    dataDir: "./data",
    kv: undefined,
    hostname: "127.0.0.1",
    port: 8092,
    advertisedUrl: undefined,
    kafka: { hostname: "127.0.0.1", port: 9092 },
    help: false,
    wsIdleTimeoutMs: undefined,
    security: {
      auth: false,
      tlsCert: undefined,
      tlsKey: undefined,
      clusterSecret: undefined,
      quotas: {},
    },
    replication: { config: {}, topics: undefined },
    observe: { logFormat: "text", logLevel: "info", metricsListen: undefined },
  });
});

Deno.test("rill broker: log and metrics flags, with clear errors for bad values", () => {
  const a = parseBrokerArgs([
    "--log-format",
    "json",
    "--log-level",
    "debug",
    "--metrics-listen",
    "127.0.0.1:0",
  ]);
  assert.deepEqual(a.observe, {
    logFormat: "json",
    logLevel: "debug",
    metricsListen: { hostname: "127.0.0.1", port: 0 },
  });
  assert.throws(
    () => parseBrokerArgs(["--log-format", "xml"]),
    (e) =>
      e instanceof UsageError && /--log-format must be text or json, got "xml"/.test(e.message),
  );
  assert.throws(
    () => parseBrokerArgs(["--log-level", "loud"]),
    (e) =>
      e instanceof UsageError &&
      /--log-level must be one of debug, info, warn, error/.test(e.message),
  );
  assert.throws(
    () => parseBrokerArgs(["--metrics-listen", "9644"]),
    (e) => e instanceof UsageError && /--metrics-listen must be HOST:PORT/.test(e.message),
  );
});

Deno.test("rill broker: flags change id, data, KV, listen address and advertised URL", () => {
  const a = parseBrokerArgs([
    "--id",
    "3",
    "--data",
    "/tmp/d",
    "--kv",
    "https://kv.example/db",
    "--listen",
    "[::1]:0",
    "--advertised-url",
    "http://broker-3:8092",
  ]);
  assert.equal(a.id, 3);
  assert.equal(a.dataDir, "/tmp/d");
  assert.equal(a.kv, "https://kv.example/db");
  assert.equal(a.hostname, "::1");
  assert.equal(a.port, 0);
  assert.equal(a.advertisedUrl, "http://broker-3:8092");
  assert.equal(parseBrokerArgs(["--listen", ":9000"]).hostname, "0.0.0.0");
  assert.equal(parseBrokerArgs(["-h"]).help, true);
});

Deno.test("rill broker: --ws-idle-timeout-ms takes milliseconds (0: never), else a usage error", () => {
  assert.equal(parseBrokerArgs(["--ws-idle-timeout-ms", "60000"]).wsIdleTimeoutMs, 60_000);
  assert.equal(parseBrokerArgs(["--ws-idle-timeout-ms", "0"]).wsIdleTimeoutMs, 0);
  assert.throws(
    () => parseBrokerArgs(["--ws-idle-timeout-ms", "1.5"]),
    (e) =>
      e instanceof UsageError &&
      /--ws-idle-timeout-ms must be a non-negative integer/.test(e.message),
  );
});

Deno.test("rill broker: the Kafka listener follows --listen, or --kafka-listen, or is off", () => {
  assert.deepEqual(parseBrokerArgs(["--listen", "127.0.0.1:0"]).kafka, {
    hostname: "127.0.0.1",
    port: 0,
  });
  assert.deepEqual(parseBrokerArgs(["--listen", "0.0.0.0:8093"]).kafka, {
    hostname: "0.0.0.0",
    port: 9093,
  });
  assert.deepEqual(
    parseBrokerArgs(["--kafka-listen", "[::1]:19092", "--kafka-advertised", "kafka.example:9092"])
      .kafka,
    { hostname: "::1", port: 19092, advertised: "kafka.example:9092" },
  );
  assert.equal(parseBrokerArgs(["--no-kafka"]).kafka, null);
  for (
    const [args, pattern] of [
      [["--kafka-listen", "9092"], /--kafka-listen/],
      [["--kafka-advertised", "host"], /--kafka-advertised/],
      [["--kafka-advertised", "host:0"], /--kafka-advertised/],
      [["--no-kafka", "--kafka-listen", "h:1"], /--no-kafka/],
    ] as [string[], RegExp][]
  ) {
    assert.throws(
      () => parseBrokerArgs(args),
      (e: Error) => e instanceof UsageError && pattern.test(e.message),
    );
  }
});

Deno.test("rill broker: a bad command line is a usage error naming the flag", () => {
  for (
    const [args, pattern] of [
      [["--id", "x"], /--id/],
      [["--id", "-1"], /--id/],
      [["--listen", "8092"], /--listen/],
      [["--listen", "h:70000"], /--listen/],
      [["--advertised-url", "not a url"], /--advertised-url/],
      [["--bogus"], /bogus/],
      [["positional"], /positional|Unexpected/i],
    ] as [string[], RegExp][]
  ) {
    assert.throws(
      () => parseBrokerArgs(args),
      (e) => e instanceof UsageError && pattern.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("rill broker --help prints the flags and exits 0", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../cli.ts", import.meta.url).pathname, "broker", "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0);
  const text = new TextDecoder().decode(out.stdout);
  for (const flag of ["--id", "--data", "--kv", "--listen", "--advertised-url"]) {
    assert.match(text, new RegExp(flag));
  }
});
