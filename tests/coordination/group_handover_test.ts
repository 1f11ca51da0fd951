/**
 * The handover rule under random join / leave / heartbeat / lost answer / crash / clock /
 * partition-growth sequences, through the HTTP sub-app over real KV: at every point no
 * partition is owned by two members in KV, and no two live clients work on one partition;
 * and once everybody heartbeats, the group becomes Stable with every partition owned.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { groupRoutes } from "../../src/http/routes/groups.ts";
import { readGroup } from "../../src/coordination/group_store.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { toList } from "../../src/coordination/group_partitions.ts";
import { revocationTimedOut } from "../../src/coordination/group_reconcile.ts";

const SESSION_MS = 3000;
const CLIENTS = 3;

type Op =
  | { kind: "join"; i: number }
  | { kind: "leave"; i: number }
  | { kind: "hb"; i: number; lost: boolean }
  | { kind: "crash"; i: number }
  | { kind: "tick"; ms: number }
  | { kind: "grow" };

interface Client {
  memberId: string;
  joined: boolean;
  crashed: boolean;
  generation: number;
  working: Set<string>;
  lastOkMs: number;
}

interface Answer {
  generation: number;
  assignment: { topic: string; partition: number }[];
  state: string;
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({ kind: fc.constant("join" as const), i: fc.nat(CLIENTS - 1) }),
    weight: 3,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("leave" as const), i: fc.nat(CLIENTS - 1) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("hb" as const),
      i: fc.nat(CLIENTS - 1),
      lost: fc.boolean(),
    }),
    weight: 8,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("crash" as const), i: fc.nat(CLIENTS - 1) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("tick" as const),
      ms: fc.integer({ min: 0, max: 2000 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.constant({ kind: "grow" as const }), weight: 1 },
);

Deno.test("handover (property): no partition is ever owned or worked by two members", async () => {
  const kv = await Deno.openKv(":memory:");
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
        const group = `g${run++}`;
        const clock = { now: 1_000_000 };
        let partitions = 4;
        const app = groupRoutes({
          kv,
          now: () => clock.now,
          partitionCount: (t) => Promise.resolve(t === "t" ? partitions : null),
          logStartOffset: () => 0,
          logEndOffset: () => 0,
          offsetForTimestamp: () => Promise.resolve(null),
        });
        const clients: Client[] = Array.from({ length: CLIENTS }, (_, i) => ({
          memberId: `m${i}`,
          joined: false,
          crashed: false,
          generation: 0,
          working: new Set(),
          lastOkMs: 0,
        }));
        const post = async (path: string, body: unknown) => {
          const res = await app.request(path, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(body),
          });
          return { status: res.status, body: await res.json() };
        };
        const accept = (c: Client, a: Answer) => {
          c.generation = a.generation;
          c.working = new Set(a.assignment.map((tp) => `${tp.topic}-${tp.partition}`));
          c.lastOkMs = clock.now;
        };
        const heartbeat = async (c: Client, lost: boolean) => {
          const r = await post(`/${group}/members/${c.memberId}/heartbeat`, {
            generation: c.generation,
          });
          if (r.status === 200) {
            if (!lost) accept(c, r.body);
          } else {
            assert.equal(r.body.error.code, "UNKNOWN_MEMBER_ID", JSON.stringify(r.body));
            c.joined = false;
            c.working.clear();
          }
          return r;
        };
        const advance = (ms: number) => {
          clock.now += ms;
          // client rule: no answer for a whole session means stop working
          for (const c of clients) if (clock.now - c.lastOkMs >= SESSION_MS) c.working.clear();
        };
        const join = async (c: Client) => {
          const r = await post(`/${group}/members`, {
            topics: ["t"],
            memberId: c.memberId,
            sessionTimeoutMs: SESSION_MS,
          });
          assert.equal(r.status, 200, JSON.stringify(r.body));
          c.joined = true;
          accept(c, r.body);
        };
        const check = async () => {
          const snap = await readGroup(kv, group);
          const owner = new Map<string, string>();
          for (const [id, m] of snap.members) {
            // a revocation past its timeout is released (group_reconcile.ts)
            const revoking = revocationTimedOut(snap.meta!, id, m.state, clock.now)
              ? []
              : toList(m.state.pendingRevocation);
            for (const tp of [...toList(m.state.assignment), ...revoking]) {
              const k = `${tp.topic}-${tp.partition}`;
              assert.ok(!owner.has(k), `KV: ${k} owned by ${owner.get(k)} and ${id}`);
              owner.set(k, id);
            }
          }
          const worker = new Map<string, string>();
          for (const c of clients) {
            if (c.crashed) continue;
            for (const k of c.working) {
              assert.ok(!worker.has(k), `${k} worked by ${worker.get(k)} and ${c.memberId}`);
              worker.set(k, c.memberId);
            }
          }
        };
        for (const op of ops) {
          if (op.kind === "tick") {
            advance(op.ms);
          } else if (op.kind === "grow") {
            partitions = Math.min(partitions + 2, 10);
          } else {
            const c = clients[op.i];
            if (c.crashed) continue;
            if (op.kind === "join" && !c.joined) {
              await join(c);
            } else if (op.kind === "leave" && c.joined) {
              c.working.clear();
              const res = await app.request(`/${group}/members/${c.memberId}`, {
                method: "DELETE",
              });
              await res.body?.cancel();
              assert.ok([204, 409].includes(res.status));
              c.joined = false;
            } else if (op.kind === "hb" && c.joined) {
              await heartbeat(c, op.lost);
            } else if (op.kind === "crash" && c.joined) {
              c.crashed = true;
              c.working.clear();
            }
          }
          await check();
        }
        // liveness: the live members heartbeat every second; crashed ones expire and the
        // group converges to Stable
        const live = clients.filter((c) => c.joined && !c.crashed);
        let state = "";
        for (let round = 1; round <= 12 && live.length > 0; round++) {
          advance(1000);
          for (const c of live) {
            const r = await heartbeat(c, false);
            if (r.status !== 200) await join(c); // it was silent too long: rejoin, as a client does
            await check();
          }
          state = (await (await app.request(`/${group}`)).json()).state;
          if (round > SESSION_MS / 1000 && state === "Stable") break;
        }
        if (live.length > 0) {
          assert.equal(state, "Stable");
          const worked = live.flatMap((c) => [...c.working]).sort();
          assert.equal(worked.length, partitions, "every partition is worked once Stable");
        }
      }),
      {
        numRuns: 150,
        examples: [[[
          // a's revocation answer is lost twice: its stale heartbeat must not release
          { kind: "join", i: 0 },
          { kind: "join", i: 1 },
          { kind: "hb", i: 0, lost: true },
          { kind: "hb", i: 0, lost: true },
          { kind: "hb", i: 1, lost: false },
        ]], [[
          // a never confirms (every answer lost) but keeps its session: the revocation times out
          { kind: "join", i: 0 },
          { kind: "join", i: 1 },
          { kind: "hb", i: 0, lost: true },
          { kind: "tick", ms: 1500 },
          { kind: "hb", i: 0, lost: true },
          { kind: "tick", ms: 1500 },
          { kind: "hb", i: 0, lost: true },
          { kind: "tick", ms: 100 },
          { kind: "hb", i: 1, lost: false },
          { kind: "hb", i: 0, lost: false },
        ]]],
      },
    );
  } finally {
    kv.close();
  }
});

Deno.test("handover under races: members on two KV handles never own one partition twice", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/meta.kv`;
  const kvs = [await Deno.openKv(path), await Deno.openKv(path)];
  try {
    let partitions = 6;
    const apps = kvs.map((kv) =>
      groupRoutes({
        kv: withLatency(kv),
        partitionCount: (t) => Promise.resolve(t === "t" ? partitions : null),
        logStartOffset: () => 0,
        logEndOffset: () => 0,
        offsetForTimestamp: () => Promise.resolve(null),
      })
    );
    const post = async (i: number, path: string, body: unknown) => {
      const res = await apps[i % 2].request(path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    let violations = 0;
    let checks = 0;
    const check = async () => {
      const snap = await readGroup(kvs[checks++ % 2], "race");
      const seen = new Set<string>();
      for (const m of snap.members.values()) {
        for (const tp of [...toList(m.state.assignment), ...toList(m.state.pendingRevocation)]) {
          const k = `${tp.topic}-${tp.partition}`;
          if (seen.has(k)) violations++;
          seen.add(k);
        }
      }
    };
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const member = async (i: number) => {
      let gen: number | null = null;
      for (let step = 0; step < 30; step++) {
        const r = rand(10);
        if (gen === null) {
          const a = await post(i + step, "/race/members", { topics: ["t"], memberId: `m${i}` });
          assert.equal(a.status, 200, JSON.stringify(a.body));
          gen = a.body.generation;
        } else if (r < 2) {
          const res = await apps[(i + step) % 2].request(`/race/members/m${i}`, {
            method: "DELETE",
          });
          await res.body?.cancel();
          gen = null;
        } else {
          const a = await post(i + step, `/race/members/m${i}/heartbeat`, { generation: gen });
          assert.equal(a.status, 200, JSON.stringify(a.body));
          gen = a.body.generation;
        }
        if (i === 0 && step === 12) partitions = 9;
        await check();
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => member(i)));
    assert.equal(violations, 0);
    assert.ok(checks >= 180);
  } finally {
    for (const kv of kvs) kv.close();
  }
});

/**
 * A KV handle whose reads and commits take a random 0-4 ms more, as a remote KV would, so
 * that concurrent read-decide-write cycles interleave.
 */
function withLatency(kv: Deno.Kv): Deno.Kv {
  const pause = () => new Promise((r) => setTimeout(r, Math.random() * 4));
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === "list") {
        return (...args: Parameters<Deno.Kv["list"]>) => {
          const it = target.list(...args);
          return {
            async *[Symbol.asyncIterator]() {
              await pause();
              yield* it;
            },
          };
        };
      }
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = async () => {
            await pause();
            return commit();
          };
          return op;
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}
