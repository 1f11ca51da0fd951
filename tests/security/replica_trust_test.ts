/**
 * Inter-broker trust with real processes: two brokers with `--auth` sharing a KV replicate
 * a topic (followers authenticate with the cluster secret kept in KV, no API key), while a
 * fake replica — no credentials, a wrong cluster secret, or a valid key of a principal that
 * may read the topic — cannot fetch as a follower, and so cannot bring a dead follower back
 * into the ISR.
 */
import assert from "node:assert/strict";
import { AclStore } from "../../src/coordination/acls.ts";
import { ApiKeyStore } from "../../src/coordination/auth_keys.ts";
import { type BrokerProcess, startBroker } from "../_helpers/broker_process.ts";

const FLAGS = [
  "--auth",
  "--session-timeout-ms",
  "1200",
  "--replica-lag-time-max-ms",
  "1500",
  "--metadata-poll-ms",
  "100",
];

interface PartitionJson {
  leader: number;
  isr: number[];
  leaderEpoch: number;
  highWatermark: number | null;
}

Deno.test("a fake replica without the cluster secret cannot fetch as a follower or alter the ISR", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rill-trust-" });
  const kvPath = `${dir}/meta.kv`;
  const procs: BrokerProcess[] = [];
  try {
    for (const id of [1, 2]) {
      procs.push(
        await startBroker({ id, dataDir: `${dir}/b${id}`, kvPath, extraArgs: FLAGS }),
      );
    }
    const kv = await Deno.openKv(kvPath);
    let admin: string, reader: string;
    try {
      admin = (await new ApiKeyStore(kv).bootstrap()).token;
      reader = (await new ApiKeyStore(kv).create({ principal: "reader" })).token;
      await new AclStore(kv).add({
        principal: "reader",
        resourceType: "topic",
        patternType: "literal",
        resourceName: "rep",
        operation: "read",
        permission: "allow",
      });
    } finally {
      kv.close();
    }
    const h = (token?: string) => ({
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    });
    const call = async (url: string, init: RequestInit = {}) => {
      const res = await fetch(url, init);
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };
    const created = await call(`${procs[0].url}/v1/topics`, {
      method: "POST",
      headers: h(admin),
      body: JSON.stringify({ name: "rep", replicationFactor: 2 }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    let describeUrl = procs[0].url;
    const describe = async (): Promise<PartitionJson> =>
      (await call(`${describeUrl}/v1/topics/rep`, { headers: h(admin) })).body.partitions[0];

    // Replication works under --auth: the follower joins the ISR with the cluster secret.
    let p = await describe();
    for (let i = 0; i < 100 && p.isr.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      p = await describe();
    }
    assert.deepEqual([...p.isr].sort(), [1, 2], "the follower is in sync");
    const leader = procs[p.leader - 1];
    describeUrl = leader.url;
    const followerId = p.leader === 1 ? 2 : 1;
    const produced = await call(`${leader.url}/v1/topics/rep/records?acks=all`, {
      method: "POST",
      headers: h(admin),
      body: JSON.stringify({ records: [{ value: "replicated" }] }),
    });
    assert.equal(produced.status, 200, JSON.stringify(produced.body));

    // The follower dies; the leader drops it from the ISR.
    procs[followerId - 1].kill("SIGKILL");
    await procs[followerId - 1].exited;
    for (let i = 0; i < 100 && p.isr.length > 1; i++) {
      await new Promise((r) => setTimeout(r, 100));
      p = await describe();
    }
    assert.deepEqual(p.isr, [p.leader]);

    // A fake replica poses as the dead follower, claiming to be caught up.
    const fake =
      `${leader.url}/v1/topics/rep/partitions/0/records?offset=1&replicaId=${followerId}` +
      `&leaderEpoch=${p.leaderEpoch}&maxWaitMs=0`;
    for (
      const [label, headers, status, code] of [
        ["no credentials", {}, 401, "UNAUTHENTICATED"],
        [
          "a wrong cluster secret",
          { "rill-cluster-secret": "x".repeat(43) },
          401,
          "UNAUTHENTICATED",
        ],
        ["a reader's key", h(reader), 403, "CLUSTER_AUTHORIZATION_FAILED"],
      ] as const
    ) {
      for (let i = 0; i < 5; i++) {
        const res = await call(fake, { headers });
        assert.equal(res.status, status, `${label}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, code, label);
      }
    }
    // The reader may still consume normally.
    const read = await call(`${leader.url}/v1/topics/rep/partitions/0/records?offset=0`, {
      headers: h(reader),
    });
    assert.equal(read.status, 200);
    assert.equal(read.body.records[0].value, "replicated");
    p = await describe();
    assert.deepEqual(p.isr, [p.leader], "the fake fetches did not bring the follower back");
    assert.match(leader.stderr(), /"audit":"replica_denied","principal":"reader"/);
  } finally {
    for (const proc of procs) await proc[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  }
});
