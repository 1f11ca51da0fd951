/**
 * The replica fetch lane (src/http/replica_fetch_lane.ts) answers exactly what the app
 * answers through its middleware chain. A query parameter the lane does not know (`x=1`,
 * ignored by the records route) sends the same fetch through the app, for comparison.
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/http/app.ts";
import { encodeBatch } from "../../src/protocol/mod.ts";
import { openTestBroker } from "./_app.ts";

const enc = new TextEncoder();
const BATCH = "application/vnd.rill.batch";

/** Status, headers (sorted) and body of an answer. */
async function snapshot(res: Response) {
  return {
    status: res.status,
    headers: [...res.headers].filter(([k]) => k !== "content-length"),
    body: new Uint8Array(await res.arrayBuffer()),
  };
}

Deno.test("replica fetch lane: the same answers as the app for data, errors and bad parameters", async () => {
  await using t = await openTestBroker();
  assert.equal((await t.call("POST", "/v1/topics", { name: "t", partitions: 1 })).status, 201);
  for (let i = 0; i < 3; i++) {
    const batch = encodeBatch([{ key: null, value: enc.encode(`v${i}`) }]);
    const res = await t.call("POST", "/v1/topics/t/records?acks=1&partition=0", batch, {
      "content-type": BATCH,
    });
    assert.equal(res.status, 200);
  }
  const base = "/v1/topics/t/partitions/0/records";
  const queries = [
    "offset=0&maxWaitMs=0&maxBytes=1048576&replicaId=1&leaderEpoch=0",
    "offset=1&maxBytes=1&replicaId=1&leaderEpoch=0",
    "offset=3&replicaId=1&leaderEpoch=0",
    "offset=0&replicaId=1&leaderEpoch=7", // FENCED_LEADER_EPOCH
    "offset=9&replicaId=1&leaderEpoch=0", // OFFSET_OUT_OF_RANGE
    "offset=0&replicaId=5&leaderEpoch=0", // not a replica
    "offset=0&maxBytes=0&replicaId=1&leaderEpoch=0", // maxBytes below 1
    "offset=x&replicaId=1", // not an integer
    "offset=0&replicaId=1&leaderEpoch=-2",
  ];
  for (const q of queries) {
    const init = { headers: { accept: BATCH } };
    const lane = await snapshot(await t.app.request(`${base}?${q}`, init));
    const app = await snapshot(await t.app.request(`${base}?${q}&x=1`, init));
    assert.deepEqual(lane, app, q);
  }
  const other = await snapshot(
    await t.app.request("/v1/topics/nope/partitions/0/records?offset=0&replicaId=1"),
  );
  const otherApp = await snapshot(
    await t.app.request("/v1/topics/nope/partitions/0/records?offset=0&replicaId=1&x=1"),
  );
  assert.deepEqual(other, otherApp);
  assert.equal(other.status, 404);
});

Deno.test("replica fetch lane: a long poll holds a stream slot until it is answered", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t", partitions: 1 });
  const app = createApp(t.broker, { quotas: { maxStreams: 1 } });
  const q = "offset=0&maxWaitMs=300&replicaId=1&leaderEpoch=0";
  const first = app.request(`/v1/topics/t/partitions/0/records?${q}`);
  await new Promise((r) => setTimeout(r, 50));
  // The slot is taken: the second long poll goes through the app, which throttles it.
  const second = await app.request(`/v1/topics/t/partitions/0/records?${q}`);
  assert.equal(second.status, 429);
  assert.equal((await second.json()).error.code, "THROTTLING_QUOTA_EXCEEDED");
  const res = await first;
  assert.equal(res.status, 200);
  await res.body?.cancel();
  const third = await app.request(`/v1/topics/t/partitions/0/records?${q.replace("300", "0")}`);
  assert.equal(third.status, 200);
  await third.body?.cancel();
});

Deno.test("replica fetch lane: without the cluster secret a replica fetch is refused as before", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t", partitions: 1 });
  const app = createApp(t.broker, { clusterSecret: "s3cret", audit: () => {} });
  const q = "/v1/topics/t/partitions/0/records?offset=0&replicaId=1&leaderEpoch=0";
  const refused = await app.request(q);
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).error.code, "CLUSTER_AUTHORIZATION_FAILED");
  const wrong = await app.request(q, { headers: { "Rill-Cluster-Secret": "nope" } });
  assert.equal(wrong.status, 403);
  await wrong.body?.cancel();
  const ok = await app.request(q, { headers: { "Rill-Cluster-Secret": "s3cret" } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("access-control-allow-origin"), "*");
  await ok.body?.cancel();
});
