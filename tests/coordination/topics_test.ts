import assert from "node:assert/strict";
import { MAX_PARTITIONS, TopicStore, validateTopicName } from "../../src/coordination/topics.ts";
import { validateTopicConfigs } from "../../src/coordination/topic_configs.ts";
import { placeReplicas } from "../../src/coordination/placement.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

function code(e: unknown): string {
  assert.ok(e instanceof RillError, `expected a RillError, got ${e}`);
  return e.code;
}

Deno.test("TopicStore create, get, list, alter and delete a topic", async () => {
  using kv = await Deno.openKv(":memory:");
  const topics = new TopicStore(kv);
  const v0 = await topics.version();
  const created = await topics.create({
    name: "orders",
    partitions: 3,
    replicationFactor: 1,
    configs: { "retention.ms": "1000" },
    brokerIds: [1],
  });
  assert.equal(created.partitions.length, 3);
  assert.deepEqual(created.partitions[2], {
    partition: 2,
    leader: 1,
    replicas: [1],
    isr: [1],
    leaderEpoch: 0,
  });
  assert.ok((await topics.version()) > v0, "create bumps the metadata version");

  const got = await topics.get("orders");
  assert.equal(got?.topicId, created.topicId);
  assert.deepEqual(got?.configs, { "retention.ms": "1000" });
  assert.deepEqual((await topics.list()).map((t) => t.name), ["orders"]);

  const v1 = await topics.version();
  const altered = await topics.alter("orders", {
    partitions: 5,
    configs: { "retention.ms": null, "segment.bytes": "4096" },
    brokerIds: [1],
  });
  assert.equal(altered.partitions.length, 5);
  assert.deepEqual(altered.configs, { "segment.bytes": "4096" });
  assert.ok((await topics.version()) > v1, "alter bumps the metadata version");
  assert.equal((await topics.get("orders"))?.partitions.length, 5);

  await assert.rejects(
    () => topics.alter("orders", { partitions: 2, brokerIds: [1] }),
    (e) => code(e) === "INVALID_PARTITIONS",
  );

  const v2 = await topics.version();
  await topics.delete("orders");
  assert.equal(await topics.get("orders"), null);
  assert.deepEqual(await topics.list(), []);
  assert.ok((await topics.version()) > v2, "delete bumps the metadata version");
  await assert.rejects(
    () => topics.delete("orders"),
    (e) => code(e) === "UNKNOWN_TOPIC_OR_PARTITION",
  );
  // Nothing of the topic remains in KV.
  const left = [];
  for await (const e of kv.list({ prefix: ["rill", "partitions"] })) left.push(e.key);
  assert.deepEqual(left, []);
});

Deno.test("TopicStore.create: two racing creators get one success and one TOPIC_ALREADY_EXISTS", async () => {
  await using dir = await tempDir();
  // Two processes' worth of independent KV handles on one file.
  using kvA = await Deno.openKv(`${dir.path}/meta.kv`);
  using kvB = await Deno.openKv(`${dir.path}/meta.kv`);
  for (let round = 0; round < 5; round++) {
    const name = `race-${round}`;
    const results = await Promise.allSettled([
      new TopicStore(kvA).create({
        name,
        partitions: 2,
        replicationFactor: 1,
        configs: {},
        brokerIds: [1],
      }),
      new TopicStore(kvB).create({
        name,
        partitions: 4,
        replicationFactor: 1,
        configs: {},
        brokerIds: [2],
      }),
    ]);
    const ok = results.filter((r) => r.status === "fulfilled");
    const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    assert.equal(ok.length, 1, `round ${round}: exactly one creator wins`);
    assert.equal(failed.length, 1);
    assert.equal(code(failed[0].reason), "TOPIC_ALREADY_EXISTS");
    const winner =
      (ok[0] as PromiseFulfilledResult<{ topicId: string; partitions: unknown[] }>).value;
    const stored = await new TopicStore(kvA).get(name);
    assert.equal(stored?.topicId, winner.topicId);
    assert.equal(stored?.partitions.length, winner.partitions.length);
  }
});

Deno.test("TopicStore.create refuses bad names, counts and factors and stores nothing", async () => {
  using kv = await Deno.openKv(":memory:");
  const topics = new TopicStore(kv);
  const base = { partitions: 1, replicationFactor: 1, configs: {}, brokerIds: [1] };
  for (const name of ["", ".", "..", "a b", "x".repeat(250), "ü"]) {
    await assert.rejects(
      () => topics.create({ ...base, name }),
      (e) => code(e) === "INVALID_TOPIC_EXCEPTION",
    );
  }
  for (const partitions of [0, -1, 1.5, MAX_PARTITIONS + 1]) {
    await assert.rejects(
      () => topics.create({ ...base, name: "t", partitions }),
      (e) => code(e) === "INVALID_PARTITIONS",
    );
  }
  await assert.rejects(
    () => topics.create({ ...base, name: "t", replicationFactor: 2 }),
    (e) => code(e) === "INVALID_REPLICATION_FACTOR",
  );
  assert.deepEqual(await topics.list(), []);
  assert.equal(await topics.version(), 0n);
});

Deno.test("TopicStore.create places the most partitions one atomic write allows", async () => {
  using kv = await Deno.openKv(":memory:");
  const t = await new TopicStore(kv).create({
    name: "wide",
    partitions: MAX_PARTITIONS,
    replicationFactor: 1,
    configs: {},
    brokerIds: [1, 2, 3],
  });
  assert.equal((await new TopicStore(kv).get("wide"))?.partitions.length, MAX_PARTITIONS);
  // Leaders spread evenly over the brokers.
  const counts = new Map<number, number>();
  for (const p of t.partitions) counts.set(p.leader, (counts.get(p.leader) ?? 0) + 1);
  assert.deepEqual([...counts.values()].sort(), [332, 333, 333]);
  await new TopicStore(kv).delete("wide");
  assert.equal(await new TopicStore(kv).get("wide"), null);
});

Deno.test("validateTopicName follows Kafka's rule", () => {
  assert.equal(validateTopicName("a.b_c-D9"), "a.b_c-D9");
  assert.equal(validateTopicName("x".repeat(249)).length, 249);
  assert.throws(() => validateTopicName(".."), (e) => code(e) === "INVALID_TOPIC_EXCEPTION");
  assert.throws(() => validateTopicName(42), (e) => code(e) === "INVALID_TOPIC_EXCEPTION");
});

Deno.test("validateTopicConfigs accepts Kafka names with string values only", () => {
  const valid = {
    "retention.ms": "-1",
    "retention.bytes": "1048576",
    "segment.bytes": "1024",
    "segment.ms": "60000",
    "cleanup.policy": "delete",
    "min.insync.replicas": "1",
    "max.message.bytes": "100",
    "message.timestamp.type": "LogAppendTime",
    "flush.messages": "1",
    "flush.ms": "1000",
  };
  assert.deepEqual(validateTopicConfigs(valid), valid);
  const bad: [unknown, string][] = [
    [{ "retention.ms": 1000 }, "INVALID_CONFIG"],
    [{ "retention.ms": "-2" }, "INVALID_CONFIG"],
    [{ "retention.ms": "soon" }, "INVALID_CONFIG"],
    [{ "segment.bytes": "10" }, "INVALID_CONFIG"],
    [{ "segment.bytes": "3000000000" }, "INVALID_CONFIG"],
    [{ "index.interval.bytes": "0" }, "INVALID_CONFIG"],
    [{ "cleanup.policy": "shred" }, "INVALID_CONFIG"],
    [{ "cleanup.policy": "compact,compact" }, "INVALID_CONFIG"],
    [{ "min.cleanable.dirty.ratio": "1.5" }, "INVALID_CONFIG"],
    [{ "delete.retention.ms": "-1" }, "INVALID_CONFIG"],
    [{ "min.compaction.lag.ms": "soon" }, "INVALID_CONFIG"],
    [{ "message.timestamp.type": "Now" }, "INVALID_CONFIG"],
    [{ "flush.messages": "10" }, "INVALID_CONFIG"],
    [{ "no.such.config": "1" }, "INVALID_CONFIG"],
    [{ "retention.ms": null }, "INVALID_CONFIG"],
    [["retention.ms"], "INVALID_REQUEST"],
    ["retention.ms=1", "INVALID_REQUEST"],
  ];
  for (const [configs, expected] of bad) {
    assert.throws(
      () => validateTopicConfigs(configs),
      (e) => code(e) === expected,
      JSON.stringify(configs),
    );
  }
  assert.deepEqual(validateTopicConfigs({ "retention.ms": null }, true), { "retention.ms": null });
});

Deno.test("placeReplicas spreads replicas over distinct brokers", () => {
  assert.deepEqual(placeReplicas(0, 3, 2, [3, 1, 2]), [
    { partition: 0, replicas: [1, 2] },
    { partition: 1, replicas: [2, 3] },
    { partition: 2, replicas: [3, 1] },
  ]);
  assert.throws(
    () => placeReplicas(0, 1, 3, [1, 2]),
    (e) => code(e) === "INVALID_REPLICATION_FACTOR",
  );
});

Deno.test("placeReplicas with racks: every partition spans racks, replicas and leaders stay even", () => {
  const racks = new Map([[1, "a"], [2, "a"], [3, "b"], [4, "b"], [5, "c"], [6, "c"]]);
  const placed = placeReplicas(0, 12, 3, [1, 2, 3, 4, 5, 6], 0, racks);
  for (const a of placed) {
    assert.equal(new Set(a.replicas.map((id) => racks.get(id))).size, 3, `${a.replicas}`);
  }
  const count = (pick: (a: { replicas: number[] }) => number[]) =>
    [1, 2, 3, 4, 5, 6].map((id) => placed.filter((a) => pick(a).includes(id)).length);
  assert.deepEqual(count((a) => a.replicas), [6, 6, 6, 6, 6, 6]);
  assert.deepEqual(count((a) => [a.replicas[0]]), [2, 2, 2, 2, 2, 2]);
  // two racks, RF 2: one replica on each; more replicas than racks: distinct brokers still
  const two = new Map([[1, "a"], [2, "a"], [3, "b"], [4, "b"]]);
  for (const a of placeReplicas(0, 8, 2, [1, 2, 3, 4], 1, two)) {
    assert.notEqual(two.get(a.replicas[0]), two.get(a.replicas[1]), `${a.replicas}`);
  }
  for (const a of placeReplicas(0, 4, 3, [1, 2, 3, 4], 0, two)) {
    assert.equal(new Set(a.replicas).size, 3);
    assert.equal(new Set(a.replicas.map((id) => two.get(id))).size, 2);
  }
  // no racks declared: the plain order, as before
  assert.deepEqual(
    placeReplicas(0, 2, 2, [1, 2, 3], 0, new Map()),
    placeReplicas(0, 2, 2, [1, 2, 3]),
  );
});
