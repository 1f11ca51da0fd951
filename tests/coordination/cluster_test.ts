import assert from "node:assert/strict";
import { ClusterStore } from "../../src/coordination/cluster.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

Deno.test("ClusterStore.ensureClusterId creates the id once, even when brokers race", async () => {
  await using dir = await tempDir();
  using kvA = await Deno.openKv(`${dir.path}/meta.kv`);
  using kvB = await Deno.openKv(`${dir.path}/meta.kv`);
  const [a, b] = await Promise.all([
    new ClusterStore(kvA).ensureClusterId(),
    new ClusterStore(kvB).ensureClusterId(),
  ]);
  assert.equal(a, b);
  assert.equal(await new ClusterStore(kvA).ensureClusterId(), a);
  assert.equal(await new ClusterStore(kvB).clusterId(), a);
});

Deno.test("ClusterStore tracks registrations, heartbeats and liveness", async () => {
  using kv = await Deno.openKv(":memory:");
  let now = 1_000_000;
  const cluster = new ClusterStore(kv, 6000, () => now);
  const one = await cluster.register({ id: 1, url: "http://a:1", role: "broker" });
  const two = await cluster.register({ id: 2, url: "http://b:2", role: "follower" });
  assert.deepEqual(
    (await cluster.brokers()).map((b) => [b.id, b.url, b.role, b.alive]),
    [[1, "http://a:1", "broker", true], [2, "http://b:2", "follower", true]],
  );

  now += 5000;
  await cluster.heartbeat(one);
  now += 2000; // broker 2 last heartbeat 7 s ago: past the 6 s session timeout
  assert.deepEqual((await cluster.brokers()).map((b) => [b.id, b.alive]), [[1, true], [2, false]]);

  // A graceful stop marks the broker dead at once.
  await cluster.deregister(one);
  assert.deepEqual((await cluster.brokers()).map((b) => [b.id, b.alive]), [[1, false], [2, false]]);

  // A restarted broker 2 registers a new incarnation; the old one's deregister is ignored.
  const twoAgain = await cluster.register({ id: 2, url: "http://b:3", role: "follower" });
  await cluster.deregister(two);
  const b2 = (await cluster.brokers()).find((b) => b.id === 2)!;
  assert.equal(b2.alive, true);
  assert.equal(b2.url, "http://b:3");
  assert.equal(b2.incarnation, twoAgain.incarnation);
});
