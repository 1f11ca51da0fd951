import assert from "node:assert/strict";
import { Broker } from "../../src/broker/broker.ts";
import { TopicStore } from "../../src/coordination/topics.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { createApp } from "../../src/http/app.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { openTestBroker } from "../http/_app.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Bounded wait for something another broker does on its next metadata poll (no event to await). */
async function eventually(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`never happened: ${what}`);
}

Deno.test("two brokers on one KV file: a create race gives one 201 and one 409 TOPIC_ALREADY_EXISTS", async () => {
  await using dir = await tempDir();
  const kvPath = `${dir.path}/meta.kv`;
  const a = await Broker.open({
    id: 1,
    dataDir: `${dir.path}/a`,
    kv: kvPath,
    advertisedUrl: "http://a",
    log: () => {},
  });
  const b = await Broker.open({
    id: 2,
    dataDir: `${dir.path}/b`,
    kv: kvPath,
    advertisedUrl: "http://b",
    log: () => {},
  });
  try {
    assert.equal(a.clusterId, b.clusterId, "one cluster");
    const appA = createApp(a);
    const appB = createApp(b);
    for (let round = 0; round < 3; round++) {
      const body = JSON.stringify({ name: `race-${round}`, partitions: 2 });
      const init = { method: "POST", body, headers: { "content-type": "application/json" } };
      const [ra, rb] = await Promise.all([
        appA.request("/v1/topics", init),
        appB.request("/v1/topics", init),
      ]);
      const statuses = [ra.status, rb.status].sort();
      assert.deepEqual(statuses, [201, 409], `round ${round}`);
      const [winner, loser] = ra.status === 201 ? [ra, rb] : [rb, ra];
      assert.equal((await loser.json()).error.code, "TOPIC_ALREADY_EXISTS");
      assert.equal((await winner.json()).partitions.length, 2);
    }
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("two brokers: partitions spread over both, the other broker answers NOT_LEADER_OR_FOLLOWER with the leader, deletes reach both", async () => {
  await using dir = await tempDir();
  const kvPath = `${dir.path}/meta.kv`;
  const config = { metadataPollMs: 10 };
  const a = await Broker.open({
    id: 1,
    dataDir: `${dir.path}/a`,
    kv: kvPath,
    advertisedUrl: "http://a",
    config,
    log: () => {},
  });
  const b = await Broker.open({
    id: 2,
    dataDir: `${dir.path}/b`,
    kv: kvPath,
    advertisedUrl: "http://b",
    config,
    log: () => {},
  });
  try {
    const meta = await a.createTopic({ name: "spread", partitions: 4 });
    assert.deepEqual(new Set(meta.partitions.map((p) => p.leader)), new Set([1, 2]));
    const onB = meta.partitions.find((p) => p.leader === 2)!.partition;
    const onA = meta.partitions.find((p) => p.leader === 1)!.partition;
    // Broker 2 learns of the topic by polling and opens its replicas.
    await eventually(() => exists(`${dir.path}/b/spread-${onB}`), "broker 2 opens its partition");
    const offsets = await b.produceRecords("spread", [{
      key: null,
      value: new Uint8Array([1]),
      headers: [],
      partition: onB,
    }], 1);
    assert.equal(offsets?.[0].offset, 0);
    await assert.rejects(
      () =>
        b.produceRecords("spread", [{ key: null, value: null, headers: [], partition: onA }], 1),
      (e) =>
        e instanceof RillError && e.code === "NOT_LEADER_OR_FOLLOWER" && e.details.leaderId === 1 &&
        e.details.leaderUrl === "http://a",
    );
    await a.deleteTopic("spread");
    assert.equal(
      await exists(`${dir.path}/a/spread-${onA}`),
      false,
      "deleted at once on the broker that was asked",
    );
    await eventually(
      async () => !(await exists(`${dir.path}/b/spread-${onB}`)),
      "broker 2 deletes its data",
    );
    assert.equal(await b.partitionCount("spread"), null);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("retention runs in the background per topic config", async () => {
  await using t = await openTestBroker({ config: { retentionCheckIntervalMs: 10 } });
  await t.call("POST", "/v1/topics", { name: "short", configs: { "segment.bytes": "1024" } });
  for (let i = 0; i < 20; i++) {
    await t.call("POST", "/v1/topics/short/records", { records: [{ value: "x".repeat(300) }] });
  }
  const replica = await t.broker.replica("short", 0);
  assert.ok(replica.log.size > 4096, "20 records of 300 bytes, nothing deleted yet");
  assert.equal(replica.logStartOffset, 0);
  // Turning a size limit on takes effect in the background, with no further request.
  const altered = await t.call("PATCH", "/v1/topics/short", {
    configs: { "retention.bytes": "2048" },
  });
  assert.equal(altered.status, 200);
  // retention.bytes keeps less than one segment over the limit.
  await eventually(() => replica.log.size < 2048 + 1024, "retention deletes old segments");
  assert.ok(replica.logStartOffset > 0);
  const res = await t.call("GET", "/v1/topics/short/partitions/0/records?offset=0");
  assert.equal(res.status, 416);
  assert.equal(res.body.error.logStartOffset, replica.logStartOffset);
  const earliest = await t.call("GET", "/v1/topics/short/partitions/0/offsets?at=earliest");
  assert.equal(earliest.body.offset, replica.logStartOffset);
  // The records from the log start on still read back.
  const rest = await t.call(
    "GET",
    `/v1/topics/short/partitions/0/records?offset=${replica.logStartOffset}`,
  );
  assert.equal(rest.body.records[0].offset, replica.logStartOffset);
});

Deno.test("restart: data survives a clean close; a topic deleted or re-created meanwhile leaves no stale data", async () => {
  await using dir = await tempDir();
  using kv = await Deno.openKv(":memory:");
  const open = () =>
    Broker.open({
      id: 1,
      dataDir: `${dir.path}/data`,
      kv,
      advertisedUrl: "http://a",
      log: () => {},
    });
  let broker = await open();
  await broker.createTopic({ name: "kept" });
  await broker.createTopic({ name: "gone" });
  await broker.createTopic({ name: "reborn" });
  for (const name of ["kept", "gone", "reborn"]) {
    await broker.produceRecords(name, [{
      key: null,
      value: new TextEncoder().encode(name),
      headers: [],
    }], 1);
  }
  await broker.close();
  assert.ok(
    await exists(`${dir.path}/data/kept-0/.clean-shutdown`),
    "clean-shutdown marker written",
  );

  // While the broker is down, another one deletes "gone" and re-creates "reborn".
  const topics = new TopicStore(kv);
  await topics.delete("gone");
  await topics.delete("reborn");
  await topics.create({
    name: "reborn",
    partitions: 1,
    replicationFactor: 1,
    configs: {},
    brokerIds: [1],
  });

  // A directory that merely looks like a partition is not the broker's to delete.
  await Deno.mkdir(`${dir.path}/data/notes-1`);
  await Deno.writeTextFile(`${dir.path}/data/notes-1/readme.txt`, "mine");

  broker = await open();
  try {
    assert.equal(await Deno.readTextFile(`${dir.path}/data/notes-1/readme.txt`), "mine");
    const kept = await broker.replica("kept", 0);
    assert.equal(kept.log.recovery.clean, true);
    assert.equal(kept.highWatermark, 1);
    assert.equal(await exists(`${dir.path}/data/gone-0`), false);
    assert.equal(
      (await broker.replica("reborn", 0)).highWatermark,
      0,
      "the old incarnation's record is gone",
    );
  } finally {
    await broker.close();
  }
});

Deno.test("Broker.open refuses a data directory of another cluster or broker id", async () => {
  await using dir = await tempDir();
  const data = `${dir.path}/data`;
  const first = await Broker.open({ id: 1, dataDir: data, log: () => {} });
  await first.close();
  using otherKv = await Deno.openKv(":memory:");
  await assert.rejects(
    () => Broker.open({ id: 1, dataDir: data, kv: otherKv, log: () => {} }),
    /belongs to cluster/,
  );
  await assert.rejects(
    () => Broker.open({ id: 2, dataDir: data, log: () => {} }),
    /belongs to broker 1/,
  );
  // The right KV (the default <data>/meta.kv) and id still open it.
  const again = await Broker.open({ id: 1, dataDir: data, log: () => {} });
  await again.close();
});

Deno.test("Broker exposes what consumer groups need: partition count, log bounds, offset for a time", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "g", partitions: 2 });
  await t.call("POST", "/v1/topics/g/records", {
    records: [{ value: "a", partition: 1, timestamp: 10 }, {
      value: "b",
      partition: 1,
      timestamp: 20,
    }],
  });
  assert.equal(await t.broker.partitionCount("g"), 2);
  assert.equal(await t.broker.partitionCount("none"), null);
  assert.equal(await t.broker.logStartOffset("g", 1), 0);
  assert.equal(await t.broker.logEndOffset("g", 1), 2);
  assert.equal(await t.broker.offsetForTimestamp("g", 1, 15), 1);
  assert.equal(await t.broker.offsetForTimestamp("g", 1, 25), 2);
});
