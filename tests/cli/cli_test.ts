/**
 * The CLI as a subprocess (`deno run -A cli.ts …`) against a real broker process.
 */
import assert from "node:assert/strict";
import { startBroker } from "../_helpers/broker_process.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function rill(
  args: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...opts.env },
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function assertOneLineError(r: Run, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `expected a failure, got stdout ${r.stdout}`);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
}

Deno.test("rill CLI against a broker process", async (t) => {
  await using broker = await startBroker();
  const env = { RILL_BROKER: broker.url };

  await t.step("topics create / list / describe / alter", async () => {
    const created = await rill(["topics", "create", "lines", "--partitions", "3"], { env });
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /Created topic lines with 3 partition/);
    const again = await rill(["topics", "create", "lines"], { env });
    assertOneLineError(again, /TOPIC_ALREADY_EXISTS/);
    const list = await rill(["topics", "list", "--broker", broker.url]);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(list.stdout.split("\n").includes("lines"));
    const altered = await rill(["topics", "alter", "lines", "--config", "retention.ms=600000"], {
      env,
    });
    assert.equal(altered.code, 0, altered.stderr);
    const described = await rill(["topics", "describe", "lines"], { env });
    assert.equal(described.code, 0, described.stderr);
    assert.match(
      described.stdout,
      /^Topic: lines\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: .*retention\.ms=600000/,
    );
    assert.equal(
      described.stdout.split("\n").filter((l) => l.startsWith("\tTopic: lines\tPartition:")).length,
      3,
    );
  });

  const input = Array.from({ length: 1000 }, (_, i) => `key-${i % 17}:value ${i}`);

  await t.step(
    "produce 1,000 lines with a key separator, consume them back in order per partition",
    async () => {
      const produced = await rill(["produce", "lines", "--key-separator", ":", "--acks", "1"], {
        env,
        stdin: input.join("\n") + "\n",
      });
      assert.equal(produced.code, 0, produced.stderr);
      assert.equal(produced.stderr, "Produced 1000 records to lines\n");

      const consumed = await rill(
        ["consume", "lines", "--from-beginning", "--max-messages", "1000", "--key-separator", ":"],
        { env },
      );
      assert.equal(consumed.code, 0, consumed.stderr);
      const lines = consumed.stdout.split("\n").slice(0, -1);
      assert.equal(lines.length, 1000);
      assert.deepEqual(lines.toSorted(), input.toSorted());
      // Each key's lines keep their produce order (a key lives in one partition).
      const byKey = (ls: string[]) => {
        const m = new Map<string, string[]>();
        for (const l of ls) {
          const k = l.slice(0, l.indexOf(":"));
          m.set(k, [...m.get(k) ?? [], l]);
        }
        return m;
      };
      assert.deepEqual(byKey(lines), byKey(input));
    },
  );

  await t.step(
    "--format json prints one object a line, in offset order per partition",
    async () => {
      const r = await rill([
        "consume",
        "lines",
        "--from-beginning",
        "--max-messages",
        "1000",
        "--format",
        "json",
      ], { env });
      assert.equal(r.code, 0, r.stderr);
      const records = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(records.length, 1000);
      assert.deepEqual(Object.keys(records[0]).sort(), [
        "headers",
        "key",
        "offset",
        "partition",
        "timestamp",
        "topic",
        "value",
      ]);
      const partitions = new Set(records.map((x) => x.partition));
      assert.equal(partitions.size, 3, "17 keys spread over the 3 partitions");
      for (const p of partitions) {
        const mine = records.filter((x) => x.partition === p);
        assert.deepEqual(mine.map((x) => x.offset), mine.map((_, i) => i));
        const order = mine.map((x) => Number(x.value.slice("value ".length)));
        assert.deepEqual(order, order.toSorted((a, b) => a - b));
      }

      const one = await rill([
        "consume",
        "lines",
        "--partition",
        "0",
        "--offset",
        "2",
        "--max-messages",
        "1",
        "--format",
        "json",
      ], { env });
      assert.equal(one.code, 0, one.stderr);
      const rec = JSON.parse(one.stdout);
      assert.deepEqual([rec.partition, rec.offset], [0, 2]);
    },
  );

  await t.step("consume --timeout-ms ends quietly when nothing arrives", async () => {
    const created = await rill(["topics", "create", "empty"], { env });
    assert.equal(created.code, 0, created.stderr);
    const r = await rill(["consume", "empty", "--from-beginning", "--timeout-ms", "300"], { env });
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, "", ""]);
  });

  await t.step("cluster status", async () => {
    const r = await rill(["cluster", "status"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Cluster: \S+\tController: \d+\tBrokers: 1/);
  });

  await t.step("groups list / describe / reset-offsets / delete", async () => {
    const api = (method: string, path: string, body?: unknown) =>
      fetch(`${broker.url}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }).then(async (r) => {
        assert.ok(r.ok, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
        return r.status === 204 ? null : await r.json();
      });
    await api("POST", "/v1/groups/billing/offsets", {
      offsets: [{ topic: "lines", partition: 0, offset: 5 }],
    });
    const list = await rill(["groups", "list"], { env });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^GROUP\tSTATE\tMEMBERS\nbilling\t\S+\t0$/m);
    const listJson = await rill(["groups", "list", "--format", "json"], { env });
    assert.deepEqual(
      JSON.parse(listJson.stdout).groups.map((g: { groupId: string }) => g.groupId),
      [
        "billing",
      ],
    );
    const described = await rill(["groups", "describe", "billing"], { env });
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, /^Group: billing\t/);
    assert.match(
      described.stdout,
      /\tTopic: lines\tPartition: 0\tOffset: 5\tLogEndOffset: \d+\tLag: \d+/,
    );

    const args = ["groups", "reset-offsets", "billing", "--topic", "lines", "--partition", "0"];
    const head = "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET\n";
    // A dry run by default: shows the new offset, changes nothing.
    const dry = await rill([...args, "--to-offset", "1"], { env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, head + "billing\tlines\t0\t5\t1\n");
    assert.match(dry.stderr, /Dry run: nothing was changed; add --execute/);
    assert.match((await rill(["groups", "describe", "billing"], { env })).stdout, /\tOffset: 5\t/);
    const reset = await rill([...args, "--to-offset", "1", "--execute"], { env });
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal(reset.stdout, head + "billing\tlines\t0\t5\t1\n");
    assert.equal(reset.stderr, "");
    assert.match((await rill(["groups", "describe", "billing"], { env })).stdout, /\tOffset: 1\t/);
    const shifted = await rill([...args, "--shift-by", "-5", "--execute", "--format", "json"], {
      env,
    });
    assert.deepEqual(JSON.parse(shifted.stdout), {
      group: "billing",
      executed: true,
      offsets: [{ topic: "lines", partition: 0, current: 1, target: 0 }],
    });
    const all = await rill(
      ["groups", "reset-offsets", "billing", "--all-topics", "--by-duration", "PT1H"],
      { env },
    );
    assert.equal(all.stdout, head + "billing\tlines\t0\t0\t0\n");
    const future = await rill([...args, "--to-datetime", "2999-01-01T00:00:00Z"], { env });
    assert.match(future.stdout, /^billing\tlines\t0\t0\t\d+$/m);
    assertOneLineError(
      await rill([...args, "--by-duration", "soon"], { env }),
      /--by-duration must be like 30s, 15m, 2h, 1d or ISO 8601/,
    );
    assertOneLineError(
      await rill(["groups", "reset-offsets", "billing", "--topic", "lines"], { env }),
      /exactly one of --to-earliest/,
    );
    const deleted = await rill(["groups", "delete", "billing"], { env });
    assert.equal(deleted.code, 0, deleted.stderr);
    assertOneLineError(
      await rill(["groups", "describe", "billing"], { env }),
      /GROUP_ID_NOT_FOUND/,
    );
  });

  await t.step(
    "consume --group commits what it printed and leaves; reset-offsets waits for an empty group",
    async () => {
      const topic = await (await fetch(`${broker.url}/v1/topics/lines`)).json();
      const total = topic.partitions.reduce(
        (n: number, p: { highWatermark: number }) => n + p.highWatermark,
        0,
      );
      const first = await rill(
        ["consume", "lines", "--group", "cg", "--from-beginning", "--max-messages", "10"],
        { env },
      );
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout.trim().split("\n").length, 10);
      const described = await rill(["groups", "describe", "cg"], { env });
      assert.equal(described.code, 0, described.stderr);
      assert.match(described.stdout, /^Group: cg\tState: Empty\t.*\tMembers: 0\tTotalLag: (\d+)/);
      assert.equal(Number(/TotalLag: (\d+)/.exec(described.stdout)![1]), total - 10);
      // a second member of the group goes on from the committed offsets: nothing twice
      const rest = await rill(
        ["consume", "lines", "--group", "cg", "--timeout-ms", "1500", "--format", "json"],
        { env },
      );
      assert.equal(rest.code, 0, rest.stderr);
      const lines = rest.stdout.trim().split("\n").filter((l) => l !== "");
      assert.equal(lines.length, total - 10);

      // SIGINT: commits what was printed and leaves the group
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI, "consume", "lines", "--group", "cg-int", "--from-beginning"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", ...env },
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let printed = "";
      while (!printed.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        printed += value;
      }
      child.kill("SIGINT");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        printed += value;
      }
      const status = await child.status;
      const stderr = new TextDecoder().decode(
        (await new Response(child.stderr).arrayBuffer()) as ArrayBuffer,
      );
      assert.equal(status.code, 0, stderr);
      const interrupted = await rill(["groups", "describe", "cg-int"], { env });
      assert.match(interrupted.stdout, /\tMembers: 0\t/);
      const committed = [...interrupted.stdout.matchAll(/\tOffset: (\d+)\t/g)]
        .reduce((n, m) => n + Number(m[1]), 0);
      assert.equal(committed, printed.trim().split("\n").length);

      // reset is refused while the group has a member
      const { Rill } = await import("../../mod.ts");
      const member = new Rill({ brokers: [broker.url] }).consumer({ groupId: "cg" });
      let assigned!: () => void;
      const joined = new Promise<void>((r) => (assigned = r));
      member.on("assigned", () => assigned());
      await member.subscribe({ topics: ["lines"] });
      await member.run({ eachMessage: () => {} });
      await joined;
      assertOneLineError(
        await rill(
          ["groups", "reset-offsets", "cg", "--topic", "lines", "--to-earliest", "--execute"],
          { env },
        ),
        /NON_EMPTY_GROUP/,
      );
      await member.disconnect();
      const reset = await rill(
        ["groups", "reset-offsets", "cg", "--topic", "lines", "--to-earliest", "--execute"],
        { env },
      );
      assert.equal(reset.code, 0, reset.stderr);
      assert.deepEqual(
        reset.stdout.trim().split("\n").map((l) => l.split("\t").filter((_, i) => i !== 3)),
        [
          ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
          ["cg", "lines", "0", "0"],
          ["cg", "lines", "1", "0"],
          ["cg", "lines", "2", "0"],
        ],
      );
    },
  );

  await t.step("errors exit non-zero with one line on stderr", async () => {
    assertOneLineError(
      await rill(["consume", "nope", "--timeout-ms", "100"], { env }),
      /UNKNOWN_TOPIC_OR_PARTITION/,
    );
    assertOneLineError(await rill(["topics", "create"], { env }), /Missing NAME/);
    assertOneLineError(
      await rill(["topics", "create", "x", "--partitions", "zero"], { env }),
      /--partitions must be an integer/,
    );
    assertOneLineError(
      await rill(["topics", "create", "bad name!"], { env }),
      /INVALID_TOPIC_EXCEPTION/,
    );
    assertOneLineError(await rill(["produce", "lines", "--bogus"], { env }), /bogus/);
    assertOneLineError(
      await rill(["consume", "lines", "--offset", "3", "--from-beginning"], { env }),
      /--offset, --from-timestamp and --from-beginning cannot be combined/,
    );
    assertOneLineError(
      await rill(["produce", "lines", "--key-separator", ":"], { env, stdin: "no separator\n" }),
      /Line 1 has no key separator/,
    );
    assertOneLineError(
      await rill(["topics", "list", "--broker", "http://127.0.0.1:9"]),
      /BROKER_NOT_AVAILABLE/,
    );
    assertOneLineError(await rill(["frobnicate"]), /Unknown command/);
  });

  await t.step("--help on every command", async () => {
    const top = await rill(["--help"]);
    assert.equal(top.code, 0);
    for (const cmd of ["topics", "produce", "consume", "groups", "cluster", "broker", "follower"]) {
      assert.match(top.stdout, new RegExp(`\\n  ${cmd} `), `top-level help lists ${cmd}`);
    }
    for (
      const cmd of ["topics", "produce", "consume", "groups", "cluster", "auth", "acls", "perf"]
    ) {
      const r = await rill([cmd, "--help"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage:/);
      assert.match(r.stdout, /--api-key KEY/, `${cmd} --help lists --api-key`);
      assert.match(r.stdout, /--ca-file PEM/, `${cmd} --help lists --ca-file`);
    }
    const follower = await rill(["follower", "--help"]);
    assert.match(follower.stdout, /^Usage: rill follower \[options\]\n\nRuns an observer replica/);
    assert.match(follower.stdout, /--topics A,B/);
    assertOneLineError(
      await rill(["topcis", "list"]),
      /Unknown command "topcis" \(did you mean "topics"\?\)/,
    );
    assertOneLineError(
      await rill(["produce", "lines", "--parition", "1"]),
      /Unknown option --parition; did you mean --partition\?/,
    );
    assertOneLineError(
      await rill(["consume", "lines", "--max-messages", "-3"]),
      /^rill: --max-messages must be at least 1, got -3$/,
    );
    assertOneLineError(
      await rill(["consume", "lines", "--partition"]),
      /--partition needs a value/,
    );
  });

  await t.step("--format json on admin listings", async () => {
    const topics = JSON.parse((await rill(["topics", "list", "--format", "json"], { env })).stdout);
    assert.ok(topics.topics.some((t: { name: string }) => t.name === "lines"));
    const described = JSON.parse(
      (await rill(["topics", "describe", "lines", "--format", "json"], { env })).stdout,
    );
    assert.equal(described.partitions.length, 3);
    const cluster = JSON.parse(
      (await rill(["cluster", "status", "--format", "json"], { env })).stdout,
    );
    assert.equal(cluster.brokers.length, 1);
    assertOneLineError(
      await rill(["topics", "list", "--format", "yaml"], { env }),
      /--format must be text or json, got "yaml"/,
    );
  });
});
