/**
 * Issue 14, D1: one client's legal-size JSON produce of hundreds of thousands of empty records
 * must not stall the broker. Real broker processes: while such requests run, the leader keeps answering `/healthz`, the
 * other broker never sees it dead, and its leadership does not move.
 */
import assert from "node:assert/strict";
import { Cluster, FAST_FLAGS } from "../replication/_cluster.ts";

function emptyRecords(n: number): string {
  return '{"records":[' + new Array(n).fill('{"value":""}').join(",") + "]}";
}

Deno.test("JSON produces of hundreds of thousands of empty records: the leader keeps answering /healthz, stays alive and keeps its leadership", async () => {
  // The default 6 s session: these four requests held the loop for 15–30 s before; a
  // shorter session would also catch a machine too loaded to run the suite.
  await using cluster = await Cluster.start(2, [
    ...FAST_FLAGS,
    "--session-timeout-ms",
    "6000",
    "--heartbeat-interval-ms",
    "1000",
  ]);
  const [p0] = await cluster.createTopic("h", 1, 2);
  const leader = p0.leader;
  const other = leader === 1 ? 2 : 1;
  await cluster.waitFor("h", (ps) => ps[0].isr.length === 2, "both replicas in sync");

  const huge = emptyRecords(576_922); // 7.5 MB, under the 8 MiB request limit
  const atLimit = emptyRecords(100_000); // the most records a request may hold
  assert.ok(huge.length < 8 * 1024 * 1024);

  let running = true;
  let healthzDuring = 0;
  const leadersSeen = new Set<number>();
  const deadSeen: string[] = [];
  const watch = (async () => {
    while (running) {
      const h = await fetch(`${cluster.url(leader)}/healthz`);
      await h.arrayBuffer();
      if (running && h.ok) healthzDuring++;
      const c = await fetch(`${cluster.url(other)}/v1/cluster`);
      const view = await c.json();
      const me = view.brokers.find((b: { id: number }) => b.id === leader);
      if (!me?.alive) deadSeen.push(`heartbeat ${Date.now() - me?.heartbeatMs} ms old`);
      leadersSeen.add((await cluster.describe("h", other))[0].leader);
    }
  })();
  const produce = async (body: string) => {
    const res = await fetch(`${cluster.url(leader)}/v1/topics/h/records?acks=1`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    return { status: res.status, body: await res.json() };
  };
  const answers = await Promise.all([
    produce(huge),
    produce(atLimit),
    produce(huge),
    produce(atLimit),
  ]);
  running = false;
  await watch;

  assert.ok(healthzDuring > 0, "/healthz answered while the produces ran");
  assert.deepEqual(deadSeen, [], "the other broker never saw the leader dead");
  assert.deepEqual([...leadersSeen], [leader], "the leadership never moved");
  for (const i of [0, 2]) {
    assert.equal(answers[i].status, 413, JSON.stringify(answers[i].body).slice(0, 300));
    assert.equal(answers[i].body.error.code, "RECORD_LIST_TOO_LARGE");
    assert.match(answers[i].body.error.message, /more than 100000 records/);
  }
  for (const i of [1, 3]) {
    assert.equal(answers[i].status, 200, JSON.stringify(answers[i].body).slice(0, 300));
    assert.equal(answers[i].body.offsets.length, 100_000);
  }
  const [after] = await cluster.describe("h", leader); // the leader's own high watermark
  assert.equal(after.highWatermark, 200_000, "the accepted records, and only those, were stored");
});
