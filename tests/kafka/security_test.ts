/**
 * The Kafka listener with `--auth`: kcat must authenticate with SASL/PLAIN (an API key's id
 * and secret) over TLS (SASL_SSL), and every operation is checked against the same ACLs as
 * the HTTP API; kafkajs authenticates with SASL/PLAIN over plaintext (SASL_PLAINTEXT).
 *
 * @module
 */
import assert from "node:assert/strict";
import { startBroker } from "../_helpers/broker_process.ts";
import { hasOpenssl, makeCertificates } from "../_helpers/tls_certificates.ts";
import { bootstrapKey, KCAT, run, saslCredentials } from "./_kafka.ts";
import { Kafka, logLevel } from "kafkajs";

Deno.test({
  name:
    "--auth with TLS: SASL/PLAIN with an API key over SASL_SSL, then the key's ACLs per operation",
  ignore: !KCAT || !hasOpenssl(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "rill-kafka-tls-" });
    try {
      const pem = await makeCertificates(dir);
      await using broker = await startBroker({
        extraArgs: ["--auth", "--tls-cert", pem.cert, "--tls-key", pem.key],
      });
      const { token: admin } = await bootstrapKey(broker.dataDir);
      const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(pem.ca)] });
      const call = async (method: string, path: string, body: unknown) => {
        const res = await fetch(`${broker.url}${path}`, {
          method,
          client,
          headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        const text = await res.text();
        assert.ok(res.ok, `${path}: ${res.status} ${text}`);
        return JSON.parse(text);
      };
      await call("POST", "/v1/topics", { name: "sec", partitions: 1 });
      const alice: string = (await call("POST", "/v1/auth/keys", { principal: "alice" })).token;
      for (const operation of ["write", "describe"]) {
        await call("POST", "/v1/auth/acls", {
          principal: "alice",
          resourceType: "topic",
          resourceName: "sec",
          operation,
        });
      }
      client.close();
      const sasl = (token: string) => {
        const { username, password } = saslCredentials(token);
        return [
          "-X",
          "security.protocol=SASL_SSL",
          "-X",
          "sasl.mechanisms=PLAIN",
          "-X",
          `sasl.username=${username}`,
          "-X",
          `sasl.password=${password}`,
          "-X",
          `ssl.ca.location=${pem.ca}`,
        ];
      };
      const b = ["-b", broker.kafka!];
      // TLS without SASL: the broker closes the connection; nothing is listed.
      const anonymous = await run("kcat", [
        ...b,
        "-L",
        "-X",
        "security.protocol=SSL",
        "-X",
        `ssl.ca.location=${pem.ca}`,
        "-m",
        "3",
      ]);
      assert.notEqual(anonymous.code, 0);
      assert.doesNotMatch(anonymous.stdout, /topic "sec"/);
      // A wrong secret fails authentication.
      const wrong = await run("kcat", [...b, "-L", ...sasl(alice + "x"), "-m", "3"]);
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /Authentication failed|SASL authentication error/i);
      // alice may write and describe "sec" ...
      const listed = await run("kcat", [...b, "-L", ...sasl(alice)]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /topic "sec" with 1 partitions/);
      const produced = await run("kcat", [...b, "-P", "-t", "sec", ...sasl(alice)], {
        stdin: "one\ntwo\n",
      });
      assert.equal(produced.code, 0, produced.stderr);
      // ... but not read it.
      const denied = await run("kcat", [
        ...b,
        "-C",
        "-t",
        "sec",
        "-o",
        "beginning",
        "-e",
        ...sasl(alice),
      ]);
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /Topic authorization failed|TOPIC_AUTHORIZATION_FAILED/i);
      // The superuser reads what alice wrote.
      const read = await run("kcat", [
        ...b,
        "-C",
        "-t",
        "sec",
        "-o",
        "beginning",
        "-e",
        "-f",
        "%s\n",
        ...sasl(admin),
      ]);
      assert.equal(read.code, 0, read.stderr);
      assert.equal(read.stdout, "one\ntwo\n");
      assert.match(broker.stderr(), /authentication_failed/);
      assert.match(broker.stderr(), /authorization_denied.*alice/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "--auth without TLS: kafkajs with SASL/PLAIN (SASL_PLAINTEXT) creates a topic and produces (read back over HTTP); a bad secret is refused",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using broker = await startBroker({ extraArgs: ["--auth"] });
    const { token, username, password: secret } = await bootstrapKey(broker.dataDir);
    const kafka = (password: string) =>
      new Kafka({
        brokers: [broker.kafka!],
        logLevel: logLevel.NOTHING,
        retry: { retries: 1, initialRetryTime: 100 },
        sasl: { mechanism: "plain", username, password },
      });
    const bad = kafka("wrong").admin();
    await assert.rejects(bad.connect(), /SASL|authentication/i);
    const admin = kafka(secret).admin();
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic: "s", numPartitions: 1 }] }), true);
    await admin.disconnect();
    const producer = kafka(secret).producer();
    await producer.connect();
    await producer.send({ topic: "s", messages: [{ value: "hello" }] });
    await producer.disconnect();
    const res = await fetch(`${broker.url}/v1/topics/s/partitions/0/records?offset=0`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal((await res.json()).records[0].value, "hello");
  },
});
