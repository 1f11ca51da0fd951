/**
 * A broker process run with `--auth --log-format json --log-level debug` and a cluster
 * secret: every stderr line is one JSON event with the broker id (the request log among
 * them, with topic, partition and error code), and no line carries a secret — the API key's
 * secret, the cluster secret, Basic credentials or the bootstrap token (which is printed
 * once, on its own notice line, for the operator to trade in). `/metrics` needs `describe`
 * on the cluster there, and `--metrics-listen` serves it without credentials.
 */
import assert from "node:assert/strict";
import { startBroker } from "../_helpers/broker_process.ts";

const CLUSTER_SECRET = "cluster-secret-0123456789-abcdef";

/** Polls the broker's stderr until `re` matches (the broker writes it as it starts). */
async function stderrMatch(stderr: () => string, re: RegExp): Promise<RegExpMatchArray> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = stderr().match(re);
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`stderr never matched ${re}:\n${stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("JSON logs carry broker, topic, partition and code, and never a secret; /metrics needs describe", async () => {
  const metricsPort = (() => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const p = (l.addr as Deno.NetAddr).port;
    l.close();
    return p;
  })();
  await using broker = await startBroker({
    id: 7,
    extraArgs: [
      "--auth",
      "--cluster-secret",
      CLUSTER_SECRET,
      "--log-format",
      "json",
      "--log-level",
      "debug",
      "--metrics-listen",
      `127.0.0.1:${metricsPort}`,
    ],
  });
  const [, bootstrapToken] = await stderrMatch(
    broker.stderr,
    /bootstrap token \(valid 1 h\): (rb_\S+)/,
  );
  const boot = await fetch(`${broker.url}/v1/auth/bootstrap`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token: bootstrapToken }),
  });
  assert.equal(boot.status, 201);
  const { token: adminToken } = await boot.json();
  const [keyId, adminSecret] = adminToken.split(".");
  const admin = { authorization: `Bearer ${adminToken}` };

  // A reader key with no ACL: its /metrics call is denied.
  const made = await fetch(`${broker.url}/v1/auth/keys`, {
    method: "POST",
    headers: { ...admin, "content-type": "application/json" },
    body: JSON.stringify({ principal: "reader" }),
  });
  assert.equal(made.status, 201);
  const { token: readerToken } = await made.json();
  const readerSecret = readerToken.split(".")[1];

  assert.equal(
    (await fetch(`${broker.url}/metrics`).then((r) => (r.body?.cancel(), r))).status,
    401,
  );
  const denied = await fetch(`${broker.url}/metrics`, {
    headers: { authorization: `Bearer ${readerToken}` },
  });
  assert.equal(denied.status, 403);
  assert.equal((await denied.json()).error.code, "CLUSTER_AUTHORIZATION_FAILED");
  const allowed = await fetch(`${broker.url}/metrics`, { headers: admin });
  assert.equal(allowed.status, 200);
  assert.match(await allowed.text(), /^rill_broker_info\{broker_id="7",role="broker"/m);
  const separate = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(separate.status, 200);
  assert.match(
    await separate.text(),
    /rill_request_errors_total\{api="http",code="CLUSTER_AUTHORIZATION_FAILED"\} 1/,
  );
  const other = await fetch(`http://127.0.0.1:${metricsPort}/v1/topics`);
  assert.equal(other.status, 404, "the metrics address serves nothing else");
  await other.body?.cancel();

  // Traffic with every kind of credential: Bearer, Basic, a wrong secret, the cluster secret.
  const created = await fetch(`${broker.url}/v1/topics`, {
    method: "POST",
    headers: { ...admin, "content-type": "application/json" },
    body: JSON.stringify({ name: "audited", partitions: 1 }),
  });
  assert.equal(created.status, 201);
  const basic = `Basic ${btoa(`${keyId}:${adminSecret}`)}`;
  const produced = await fetch(`${broker.url}/v1/topics/audited/records`, {
    method: "POST",
    headers: { authorization: basic, "content-type": "application/json" },
    body: JSON.stringify({ records: [{ value: "hello" }] }),
  });
  assert.equal(produced.status, 200);
  const wrong = await fetch(`${broker.url}/v1/topics`, {
    headers: { authorization: `Bearer ${keyId}.not-the-secret-at-all` },
  });
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
  const replica = await fetch(
    `${broker.url}/v1/topics/audited/partitions/0/records?offset=0&replicaId=9&leaderEpoch=0`,
    { headers: { "rill-cluster-secret": CLUSTER_SECRET, accept: "application/vnd.rill.batch" } },
  );
  await replica.body?.cancel();
  const missing = await fetch(`${broker.url}/v1/topics/audited/partitions/5/records?offset=0`, {
    headers: admin,
  });
  assert.equal(missing.status, 404);
  await missing.body?.cancel();

  await broker.stop();
  const lines = broker.stderr().split("\n").filter((l) => l !== "");
  const events = [];
  for (const line of lines) {
    // the operator's one-time notice (two lines)
    if (line.includes("One-time bootstrap token") || line.startsWith("  run: rill auth")) continue;
    const e = JSON.parse(line); // every other line is a JSON event
    if (e.audit !== undefined) continue; // the audit trail (its own JSON lines)
    assert.equal(e.broker, 7, line);
    assert.ok(["debug", "info", "warn", "error"].includes(e.level), line);
    events.push(e);
  }
  const produceLog = events.find((e) => e.msg === "POST /v1/topics/audited/records 200");
  assert.ok(produceLog, "the produce request is logged at debug level");
  assert.equal(produceLog.topic, "audited");
  const missingLog = events.find((e) =>
    e.msg === "GET /v1/topics/audited/partitions/5/records 404"
  );
  assert.ok(missingLog);
  assert.equal(missingLog.partition, 5);
  assert.equal(missingLog.code, "UNKNOWN_TOPIC_OR_PARTITION");
  assert.ok(events.some((e) => e.msg === "SIGTERM received, shutting down" && e.level === "info"));

  const all = broker.stderr();
  const notice = lines.filter((l) => l.includes(bootstrapToken));
  assert.equal(notice.length, 1, "the bootstrap token appears once, on its notice line");
  for (
    const secret of [adminSecret, readerSecret, CLUSTER_SECRET, btoa(`${keyId}:${adminSecret}`)]
  ) {
    assert.ok(!all.includes(secret), `a secret appears in the logs: ${secret.slice(0, 4)}…`);
  }
});
