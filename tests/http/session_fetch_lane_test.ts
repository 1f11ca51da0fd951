/**
 * The session fetch lane (src/http/session_fetch_lane.ts) answers exactly what the app
 * answers through its middleware chain. A query (`?encoding=auto`, which the fetch route
 * ignores for framed answers) sends the same fetch through the app, for comparison.
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/http/app.ts";
import { encodeBatch } from "../../src/protocol/mod.ts";
import { openTestBroker } from "./_app.ts";

const enc = new TextEncoder();
const FRAMED = "application/vnd.rill.fetch";

/** Status, headers and body of an answer. */
async function snapshot(res: Response) {
  return {
    status: res.status,
    headers: [...res.headers].filter(([k]) => k !== "content-length"),
    body: new Uint8Array(await res.arrayBuffer()),
  };
}

Deno.test("session fetch lane: the same answers as the app for data, errors and bad bodies", async () => {
  await using t = await openTestBroker();
  assert.equal((await t.call("POST", "/v1/topics", { name: "t", partitions: 2 })).status, 201);
  for (let i = 0; i < 3; i++) {
    const batch = encodeBatch([{ key: null, value: enc.encode(`v${i}`) }]);
    const res = await t.call("POST", "/v1/topics/t/records?acks=1&partition=0", batch, {
      "content-type": "application/vnd.rill.batch",
    });
    assert.equal(res.status, 200);
  }
  const part = (p: number, offset: number, extra = {}) => ({
    topic: "t",
    partition: p,
    offset,
    maxBytes: 1 << 20,
    ...extra,
  });
  const bodies = [
    // a follower: data, nothing yet, a fenced epoch, past the log end
    { replicaId: 1, partitions: [part(0, 0, { leaderEpoch: 0 }), part(1, 0, { leaderEpoch: 0 })] },
    { replicaId: 1, partitions: [part(0, 1, { leaderEpoch: 0 })], maxBytes: 1 },
    { replicaId: 1, partitions: [part(0, 0, { leaderEpoch: 7 })] },
    { replicaId: 1, partitions: [part(0, 9, { leaderEpoch: 0 })] },
    { replicaId: 5, partitions: [part(0, 0)] }, // not a replica of the partition
    { replicaId: 1, partitions: [{ topic: "nope", partition: 0, offset: 0, leaderEpoch: 0 }] },
    // a consumer (auth off: the lane answers it as the app would)
    { partitions: [part(0, 1), part(1, 0)] },
    // bad bodies
    { replicaId: 1, partitions: [part(0, 0), part(0, 0)] },
    { partitions: "all" },
    { partitions: [], surprise: 1 },
    { partitions: [part(0, 0, { leaderEpoch: 0 })] }, // leaderEpoch without replicaId
    "not json",
    "[1, 2]",
    "",
  ];
  for (const body of bodies) {
    const init = () => ({
      method: "POST",
      headers: { "content-type": "application/json", accept: FRAMED },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    const lane = await snapshot(await t.app.request("/v1/fetch", init()));
    const app = await snapshot(await t.app.request("/v1/fetch?encoding=auto", init()));
    assert.deepEqual(lane, app, JSON.stringify(body));
  }
  // The first follower fetch got the three records of partition 0 (framed raw batches).
  const res = await t.app.request("/v1/fetch", {
    method: "POST",
    headers: { "content-type": "application/json", accept: FRAMED },
    body: JSON.stringify(bodies[0]),
  });
  assert.equal(res.status, 200);
  // A POST without an Origin header (a follower, a server) gets no CORS headers; a browser's
  // does, through the lane as through the app.
  assert.equal(res.headers.get("access-control-allow-origin"), null);
  for (const path of ["/v1/fetch", "/v1/fetch?encoding=auto"]) {
    const browser = await t.app.request(path, {
      method: "POST",
      headers: { "content-type": "application/json", accept: FRAMED, origin: "https://a.b" },
      body: JSON.stringify(bodies[0]),
    });
    assert.equal(browser.status, 200, path);
    assert.equal(browser.headers.get("access-control-allow-origin"), "*", path);
    assert.match(browser.headers.get("access-control-expose-headers") ?? "", /Rill-Next-Offset/);
    await browser.body?.cancel();
  }
  const frame = new Uint8Array(await res.arrayBuffer());
  const n = new DataView(frame.buffer).getUint32(0);
  const header = JSON.parse(new TextDecoder().decode(frame.subarray(4, 4 + n)));
  assert.deepEqual(
    header.partitions.map((p: { partition: number; nextOffset: number }) => [
      p.partition,
      p.nextOffset,
    ]),
    [[0, 3], [1, 0]],
  );
});

Deno.test("session fetch lane: a follower session fetch without the cluster secret is refused as before", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t", partitions: 1 });
  const app = createApp(t.broker, { clusterSecret: "s3cret", audit: () => {} });
  const init = (secret?: string) => ({
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: FRAMED,
      ...(secret ? { "Rill-Cluster-Secret": secret } : {}),
    },
    body: JSON.stringify({
      replicaId: 1,
      partitions: [{ topic: "t", partition: 0, offset: 0, leaderEpoch: 0 }],
    }),
  });
  const refused = await app.request("/v1/fetch", init());
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).error.code, "CLUSTER_AUTHORIZATION_FAILED");
  const wrong = await app.request("/v1/fetch", init("nope"));
  assert.equal(wrong.status, 403);
  await wrong.body?.cancel();
  const ok = await app.request("/v1/fetch", init("s3cret"));
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
});
