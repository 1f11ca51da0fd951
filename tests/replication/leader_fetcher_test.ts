/**
 * Followers copy all the partitions of a leader with one fetch (src/broker/leader_fetcher.ts):
 * two brokers in this process, each serving HTTP on loopback, sharing one KV.
 */
import assert from "node:assert/strict";
import { Broker } from "../../src/broker/broker.ts";
import { createApp } from "../../src/http/app.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

const enc = new TextEncoder();

interface Served {
  broker: Broker;
  url: string;
  requests: { multi: number; perPartition: number };
  /** the partitions each follower POST /v1/fetch named, and its session */
  bodies: { partitions: unknown[]; session?: { id: number; epoch: number } }[];
  close(): Promise<void>;
}

async function serveBroker(
  id: number,
  dir: string,
  kv: string,
  replicaFetchSessions: boolean,
): Promise<Served> {
  const broker = await Broker.open({
    id,
    dataDir: `${dir}/b${id}`,
    kv,
    config: { metadataPollMs: 20, replicaFetchSessions },
    log: () => {},
  });
  const app = createApp(broker);
  const requests = { multi: 0, perPartition: 0 };
  const bodies: Served["bodies"] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req, info) => {
      const url = new URL(req.url);
      if (req.method === "POST" && url.pathname === "/v1/fetch") {
        requests.multi++;
        return req.clone().json().then((body) => {
          bodies.push(body);
          return app.fetch(req, info);
        });
      }
      if (url.searchParams.has("replicaId")) requests.perPartition++;
      return app.fetch(req, info);
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  await broker.register(url);
  return {
    broker,
    url,
    requests,
    bodies,
    async close() {
      broker.beginShutdown();
      await broker.close();
      ac.abort();
      await server.finished;
    },
  };
}

for (const sessions of [true, false]) {
  Deno.test(`followers copy a leader's 8 partitions with ${sessions ? "one fetch per leader" : "one fetch per partition (--replica-fetch partition)"}`, async () => {
    await using dir = await tempDir();
    const kv = `${dir.path}/meta.kv`;
    const a = await serveBroker(1, dir.path, kv, sessions);
    const b = await serveBroker(2, dir.path, kv, sessions);
    try {
      const meta = await a.broker.createTopic({ name: "r", partitions: 8, replicationFactor: 2 });
      assert.equal(meta.partitions.length, 8);
      // acks=all on every partition: each needs its follower's copy to be acknowledged.
      for (let round = 0; round < 5; round++) {
        await Promise.all(
          meta.partitions.map(async (p) => {
            const leader = p.leader === 1 ? a.broker : b.broker;
            for (let tries = 0;; tries++) {
              try {
                await leader.produceBatches(
                  "r",
                  p.partition,
                  encodeBatch([{ value: enc.encode(`${round}`) }]),
                  -1,
                );
                return;
              } catch (e) {
                // The ISR forms as the followers start; bounded retries.
                if (tries > 200) throw e;
                await new Promise((r) => setTimeout(r, 20));
              }
            }
          }),
        );
      }
      for (const p of meta.partitions) {
        const follower = p.leader === 1 ? b.broker : a.broker;
        const r = await follower.replica("r", p.partition);
        assert.equal(r.logEndOffset, 5, `partition ${p.partition} copied`);
      }
      const total = {
        multi: a.requests.multi + b.requests.multi,
        per: a.requests.perPartition + b.requests.perPartition,
      };
      if (sessions) {
        assert.equal(total.per, 0, "no per-partition replica fetches");
        assert.ok(total.multi > 0, "followers fetched with POST /v1/fetch");
      } else {
        assert.equal(total.multi, 0, "no multi-partition fetches");
        assert.ok(total.per > 0);
      }
    } finally {
      await b.close();
      await a.close();
    }
  });
}

Deno.test("a follower's fetch session names only the partitions that moved", async () => {
  await using dir = await tempDir();
  const kv = `${dir.path}/meta.kv`;
  const a = await serveBroker(1, dir.path, kv, true);
  const b = await serveBroker(2, dir.path, kv, true);
  try {
    const meta = await a.broker.createTopic({ name: "s", partitions: 8, replicationFactor: 2 });
    // Only the partitions led by broker 1 whose follower is broker 2.
    const led = meta.partitions.filter((p) => p.leader === 1);
    assert.ok(led.length >= 2, "broker 1 leads several partitions");
    const busy = led[0].partition;
    for (let i = 0; i < 20; i++) {
      for (let tries = 0;; tries++) {
        try {
          await a.broker.produceBatches(
            "s",
            busy,
            encodeBatch([{ value: enc.encode(`${i}`) }]),
            -1,
          );
          break;
        } catch (e) {
          if (tries > 200) throw e;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
    const r = await b.broker.replica("s", busy);
    assert.equal(r.logEndOffset, 20, "the busy partition copied");
    for (const p of led) {
      if (p.partition === busy) continue;
      assert.equal((await b.broker.replica("s", p.partition)).logEndOffset, 0);
    }
    // Broker 1 received broker 2's fetches: a full one opens the session, then the
    // incremental ones name only the busy partition (its offset moved with each copy).
    const incremental = a.bodies.filter((x) => x.session !== undefined && x.session.id > 0);
    assert.ok(incremental.length >= 10, `incremental fetches: ${incremental.length}`);
    const maxNamed = Math.max(...incremental.map((x) => x.partitions.length));
    assert.ok(maxNamed < led.length, `an incremental fetch named ${maxNamed} of ${led.length}`);
    assert.ok(a.broker.fetchSessions.size >= 1, "the leader keeps the follower's session");
    // The leader forgets its sessions (as after a restart): the follower opens a new one.
    a.broker.fetchSessions.clear();
    const opened = a.bodies.filter((x) => x.session?.id === 0).length;
    for (let i = 0; i < 5; i++) {
      await a.broker.produceBatches("s", busy, encodeBatch([{ value: enc.encode(`${i}`) }]), -1);
    }
    assert.equal(r.logEndOffset, 25, "copying goes on after the leader forgot the session");
    assert.ok(a.bodies.filter((x) => x.session?.id === 0).length > opened, "a new session");
  } finally {
    await b.close();
    await a.close();
  }
});
