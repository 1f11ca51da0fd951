/**
 * A lone broker whose own heartbeat lapses (its event loop starved, its KV write queued
 * behind other work) while it serves and holds the controller lease keeps leading its
 * partitions: the controller never counts its own broker dead, so it never writes leader
 * -1 for a partition whose only in-sync replica is itself (the crowd bench's
 * LEADER_NOT_AVAILABLE). Here the heartbeat interval (60 s) is far past the session timeout
 * (1.2 s), so the heartbeat lapses for sure while the controller keeps ticking.
 */
import assert from "node:assert/strict";
import { batchOf, Cluster } from "./_cluster.ts";
import type { BrokerRegistration } from "../../src/coordination/cluster.ts";
import type { Lease } from "../../src/coordination/leases.ts";
import { brokerKey, controllerKey } from "../../src/coordination/kv_keys.ts";

const SESSION_MS = 1200;

Deno.test("a lone broker whose heartbeat lapses keeps leading its partitions (no leader -1)", async () => {
  await using cluster = await Cluster.start(1, [
    "--session-timeout-ms",
    String(SESSION_MS),
    "--heartbeat-interval-ms",
    "60000",
    "--metadata-poll-ms",
    "100",
  ]);
  using kv = await Deno.openKv(cluster.kvPath);
  await cluster.explain(async () => {
    await cluster.createTopic("lone", 2, 1);
    await cluster.waitFor("lone", (ps) => ps.every((p) => p.leader === 1), "broker 1 leading");
    const reg = (await kv.get<BrokerRegistration>(brokerKey(1))).value!;
    const expired = reg.heartbeatMs + SESSION_MS;
    // Wait (bounded) until the controller renewed its lease twice after broker 1's session
    // expired: the first of those ticks re-read the registrations (their recheck time is
    // that expiry) and made its elections; the second started after it ended.
    const renewals = new Set<number>();
    const deadline = Date.now() + 30_000;
    // (Polled, bounded: the lease lives in KV, with no event to await across processes.)
    while (renewals.size < 2) {
      if (Date.now() > deadline) throw new Error("the controller stopped renewing its lease");
      const lease = (await kv.get<Lease>(controllerKey())).value;
      if (lease && lease.holder === 1 && lease.expiresMs - SESSION_MS > expired) {
        renewals.add(lease.expiresMs);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    // Its session did expire as the registrations tell it...
    const status = await (await fetch(`${cluster.url(1)}/v1/cluster`)).json();
    assert.equal(status.brokers[0].alive, false, JSON.stringify(status));
    // ...yet it still leads, and a produce succeeds.
    const ps = await cluster.describe("lone");
    assert.deepEqual(ps.map((p) => [p.leader, p.isr]), [[1, [1]], [1, [1]]]);
    for (const p of ps) {
      const res = await fetch(
        `${cluster.url(1)}/v1/topics/lone/records?partition=${p.partition}`,
        {
          method: "POST",
          headers: { "content-type": "application/vnd.rill.batch" },
          body: batchOf(`still-${p.partition}`),
        },
      );
      assert.equal(res.status, 200, await res.text());
    }
  });
});

Deno.test("a lone broker stalled past its session timeout logs its late heartbeat; nothing is elected, it serves on", async () => {
  await using cluster = await Cluster.start(1, [
    "--session-timeout-ms",
    String(SESSION_MS),
    "--metadata-poll-ms",
    "100",
  ]);
  await cluster.explain(async () => {
    await cluster.createTopic("stall", 2, 1);
    const before = await cluster.waitFor(
      "stall",
      (ps) => ps.every((p) => p.leader === 1),
      "broker 1 leading",
    );
    // The whole process held up (as a starved event loop is) past its session timeout,
    // though less than the controller's stall grace (3 s).
    const proc = cluster.procs.get(1)!;
    proc.kill("SIGSTOP");
    await new Promise((r) => setTimeout(r, SESSION_MS * 1.5));
    proc.kill("SIGCONT");
    const deadline = Date.now() + 20_000;
    while (!/heartbeat landed \d+ ms after the previous one/.test(proc.stderr())) {
      if (Date.now() > deadline) throw new Error("no late heartbeat logged");
      await new Promise((r) => setTimeout(r, 20));
    }
    const after = await cluster.describe("stall");
    assert.deepEqual(after, before);
    assert.doesNotMatch(proc.stderr(), /elected broker/);
    const res = await fetch(`${cluster.url(1)}/v1/topics/stall/records?partition=0`, {
      method: "POST",
      headers: { "content-type": "application/vnd.rill.batch" },
      body: batchOf("after the stall"),
    });
    assert.equal(res.status, 200, await res.text());
  });
});
