import assert from "node:assert/strict";
import { KvHealth, type KvHealthStatus, watchKvHealth } from "../../src/coordination/kv_health.ts";
import { KvConnectEndpoint, openRemoteKv } from "../_helpers/kv_connect_server.ts";

Deno.test("KvHealth: an outage of a hosted KV is reported once when calls stall, once when they complete", async () => {
  await using endpoint = await KvConnectEndpoint.start();
  const changes: KvHealthStatus[] = [];
  let changed = () => {};
  const health = new KvHealth({
    stallMs: 1000,
    onChange: (s) => {
      changes.push(s);
      changed();
    },
  });
  using raw = await openRemoteKv(endpoint.url, "rill-test-token");
  const kv = watchKvHealth(raw, health);
  await kv.set(["a"], 1);
  // A loaded machine may have stalled that first call past the bound: count from here.
  await kv.get(["a"]);
  assert.equal(health.status().reachable, true);
  changes.length = 0;

  endpoint.startOutage();
  const next = () => new Promise<void>((r) => changed = r);
  const down = next();
  // Many calls during the outage, of every kind: one report.
  const calls = [
    kv.get(["a"]),
    kv.getMany([["a"], ["b"]]),
    kv.set(["b"], 2),
    kv.atomic().check({ key: ["c"], versionstamp: null }).set(["c"], 3).commit(),
    Array.fromAsync(kv.list({ prefix: [] })),
  ];
  await down;
  assert.equal(changes.length, 1);
  assert.equal(changes[0].reachable, false);
  assert.equal(health.status().pending, 5);
  const res = await fetch(endpoint.url, { method: "POST" });
  assert.equal(res.status, 503);
  await res.body?.cancel();

  const up = next();
  endpoint.endOutage();
  const [a, many, , commit, listed] = await Promise.all(calls);
  await up;
  assert.equal((a as Deno.KvEntryMaybe<number>).value, 1);
  assert.equal((many as unknown[]).length, 2);
  assert.equal((commit as Deno.KvCommitResult).ok, true);
  assert.ok((listed as unknown[]).length >= 1);
  assert.deepEqual(changes.map((c) => c.reachable), [false, true]);
  assert.deepEqual(health.status(), {
    reachable: true,
    unreachableSinceMs: null,
    oldestPendingMs: 0,
    pending: 0,
  });
  health.close();
});

Deno.test("KvHealth: a failed check or a refused argument is an answer, not an outage", async () => {
  using raw = await Deno.openKv(":memory:");
  const changes: KvHealthStatus[] = [];
  const health = new KvHealth({ stallMs: 1000, onChange: (s) => changes.push(s) });
  const kv = watchKvHealth(raw, health);
  await kv.set(["k"], 1);
  const r = await kv.atomic().check({ key: ["k"], versionstamp: null }).set(["k"], 2).commit();
  assert.equal(r.ok, false);
  await assert.rejects(() => kv.atomic().sum(["k"], 1n).commit());
  assert.deepEqual(changes, []);
  assert.equal(health.status().reachable, true);
  health.close();
});
