/**
 * confluent-kafka-python (Debian's python3-confluent-kafka, librdkafka 2.0.2) against real
 * broker processes: an idempotent acks=all producer keeps producing to a 3-broker RF 3
 * cluster while the partition leader is killed, and every delivered record is then
 * consumed exactly once, in order; a group consumer commits, restarts and resumes at the
 * committed offset.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Cluster, FAST_FLAGS } from "../replication/_cluster.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { CONFLUENT, createTopic, run, spawn } from "./_kafka.ts";

const SCRIPT = new URL("./confluent_client.py", import.meta.url).pathname;
const PY = "/usr/bin/python3";

function consumed(stdout: string): { partition: number; offset: number; value: string }[] {
  return stdout.split("\n").filter((l) => l.startsWith("OFFSET ")).map((l) => {
    const [, p, o, v] = l.split(" ");
    return { partition: Number(p), offset: Number(o), value: v };
  });
}

Deno.test({
  name:
    "idempotent acks=all producing through a leader kill in a 3-broker RF 3 cluster: every delivered record exactly once",
  ignore: !CONFLUENT,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using cluster = await Cluster.start(3, FAST_FLAGS);
    const url = cluster.url(1);
    const res = await fetch(`${url}/v1/topics`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: "ha",
        partitions: 1,
        replicationFactor: 3,
        configs: { "min.insync.replicas": "2" },
      }),
    });
    assert.equal(res.status, 201, await res.text());
    const bootstrap = [...cluster.procs.values()].map((p) => p.kafka).join(",");
    const n = 600;
    await using producer = spawn(PY, [SCRIPT, "produce", bootstrap, "ha", String(n)], {
      stdin: true,
    });
    await producer.waitLine((l) => l === "HALF", 120_000);
    const topic = await (await fetch(`${url}/v1/topics/ha`)).json();
    const leader = topic.partitions[0].leader as number;
    await cluster.kill(leader);
    await producer.writeLine("go");
    const deliveredLine = await producer.waitLine((l) => l.startsWith("DELIVERED"), 180_000);
    const errors = await producer.waitLine((l) => l.startsWith("ERRORS"));
    const delivered = deliveredLine.split(" ").slice(1).map(Number);
    assert.equal(errors.split(" ")[1], "0", errors);
    assert.equal(delivered.length, n, "every record was acknowledged");
    const alive = [...cluster.procs.values()].map((p) => p.kafka).join(",");
    const c = await run(PY, [SCRIPT, "consume", alive, "ha", "after-kill", String(n + 50)], {
      timeoutMs: 120_000,
    });
    const values = consumed(c.stdout).map((r) => Number(r.value));
    assert.equal(values.length, n, `consumed ${values.length}:\n${c.stdout.slice(-2000)}`);
    assert.deepEqual(values, Array.from({ length: n }, (_, i) => i), "once each, in order");
  },
});

Deno.test({
  name: "confluent-kafka group consumer commits, restarts and resumes at the committed offset",
  ignore: !CONFLUENT,
  async fn() {
    await using broker = await startBroker();
    await createTopic(broker.url, "resume", 1);
    const body = Array.from({ length: 20 }, (_, i) => ({ value: `r${i}` }));
    const p = await fetch(`${broker.url}/v1/topics/resume/records`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ records: body }),
    });
    assert.equal(p.status, 200, await p.text());
    const first = await run(PY, [SCRIPT, "consume", broker.kafka!, "resume", "rg", "7"]);
    assert.deepEqual(
      consumed(first.stdout).map((r) => r.value),
      body.slice(0, 7).map((b) => b.value),
    );
    const http = await (await fetch(`${broker.url}/v1/groups/rg/offsets`)).json();
    assert.equal(http.offsets[0].offset, 7);
    const second = await run(PY, [SCRIPT, "consume", broker.kafka!, "resume", "rg", "100"]);
    const rest = consumed(second.stdout);
    assert.equal(rest[0].offset, 7);
    assert.deepEqual(rest.map((r) => r.value), body.slice(7).map((b) => b.value));
  },
});
