/**
 * The consumer group API through `app.request()` on the `/v1/groups` sub-app, over real
 * Deno KV. The topics are plain data (partition counts and log bounds), not mocks.
 */
import assert from "node:assert/strict";
import type { Hono } from "hono";
import { type GroupRouteDeps, groupRoutes } from "../../src/http/routes/groups.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { RillError } from "../../src/protocol/errors.ts";

interface TP {
  topic: string;
  partition: number;
}

interface Answer {
  memberId: string;
  generation: number;
  assignment: TP[];
  pendingRevocation: TP[];
  pendingAssignment: TP[];
  heartbeatIntervalMs: number;
  sessionTimeoutMs: number;
  state: string;
}

/** Topics as data: partition count, log start and end per partition; record i has ts 1000*i. */
class Topics {
  /** `hosted: false` stands for a partition this broker does not lead */
  readonly logs = new Map<string, { start: number; end: number; hosted?: boolean }[]>();
  create(name: string, partitions: number, end = 0): void {
    this.logs.set(name, Array.from({ length: partitions }, () => ({ start: 0, end })));
  }
  grow(name: string, partitions: number): void {
    const l = this.logs.get(name)!;
    while (l.length < partitions) l.push({ start: 0, end: 0 });
  }
}

function deps(kv: Deno.Kv, topics: Topics, clock: { now: number }): GroupRouteDeps {
  return {
    kv,
    now: () => clock.now,
    partitionCount: (t) => Promise.resolve(topics.logs.get(t)?.length ?? null),
    logStartOffset: (t, p) => topics.logs.get(t)![p].start,
    logEndOffset: (t, p) => {
      const l = topics.logs.get(t)![p];
      if (l.hosted === false) {
        throw new RillError("NOT_LEADER_OR_FOLLOWER", `This broker does not lead ${t}-${p}`);
      }
      return l.end;
    },
    offsetForTimestamp: (t, p, ts) => {
      const l = topics.logs.get(t)![p];
      const o = Math.max(l.start, Math.ceil(ts / 1000));
      return Promise.resolve(o < l.end ? o : null);
    },
  };
}

async function call(
  app: Hono,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> | null }> {
  const res = await app.request(path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function ok<T = Record<string, unknown>>(
  app: Hono,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const r = await call(app, method, path, body);
  assert.ok(r.status < 300, `${method} ${path} -> ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as T;
}

function errCode(r: { body: Record<string, unknown> | null }): string {
  return (r.body?.error as { code: string }).code;
}

const join = (app: Hono, g: string, body: Record<string, unknown>) =>
  ok<Answer>(app, "POST", `/${g}/members`, body);
const beat = (app: Hono, g: string, a: { memberId: string; generation: number }) =>
  ok<Answer>(app, "POST", `/${g}/members/${a.memberId}/heartbeat`, { generation: a.generation });

/** Heartbeats every member (acknowledging its last answer) until all say Stable; rounds used. */
async function settle(app: Hono, g: string, members: Map<string, Answer>): Promise<number> {
  for (let round = 1; round <= 10; round++) {
    for (const [id, a] of members) members.set(id, await beat(app, g, a));
    if ([...members.values()].every((a) => a.state === "Stable")) return round;
  }
  throw new Error("group did not become Stable in 10 rounds");
}

function names(tps: TP[]): string[] {
  return tps.map((tp) => `${tp.topic}-${tp.partition}`).sort();
}

/** Asserts no partition is held (assignment or pending revocation) by two members. */
function assertDisjoint(members: Iterable<Answer>): void {
  const seen = new Map<string, string>();
  for (const a of members) {
    for (const n of names([...a.assignment, ...a.pendingRevocation])) {
      assert.ok(!seen.has(n), `${n} held by ${seen.get(n)} and ${a.memberId}`);
      seen.set(n, a.memberId);
    }
  }
}

async function setup(partitions = 6) {
  const kv = await Deno.openKv(":memory:");
  const topics = new Topics();
  topics.create("orders", partitions);
  const clock = { now: 1_000_000 };
  const app = groupRoutes(deps(kv, topics, clock));
  return { kv, topics, clock, app, [Symbol.dispose]: () => kv.close() };
}

Deno.test("join answers the whole topic to a lone member, with a third of the session as interval", async () => {
  using w = await setup();
  const a = await join(w.app, "g", { topics: ["orders"] });
  assert.equal(names(a.assignment).length, 6);
  assert.equal(a.generation, 1);
  assert.equal(a.heartbeatIntervalMs, 3333);
  assert.equal(a.sessionTimeoutMs, 10_000);
  assert.equal(a.state, "Stable");
  assert.match(a.memberId, /^[0-9a-f-]{36}$/);
});

Deno.test("3 members over 6 partitions: each partition is owned by exactly one member", async () => {
  using w = await setup();
  const ms = new Map<string, Answer>();
  for (let i = 0; i < 3; i++) {
    const a = await join(w.app, "g", { topics: ["orders"] });
    ms.set(a.memberId, a);
    assertDisjoint(ms.values());
  }
  await settle(w.app, "g", ms);
  const all = [...ms.values()].flatMap((a) => names(a.assignment)).sort();
  assert.deepEqual(
    all,
    names(Array.from({ length: 6 }, (_, p) => ({ topic: "orders", partition: p }))),
  );
  for (const a of ms.values()) assert.equal(a.assignment.length, 2);
  const d = await ok<{ state: string; generation: number }>(w.app, "GET", "/g");
  assert.equal(d.state, "Stable");
  assert.equal(d.generation, 3);
});

Deno.test("a new member gets partitions only after their old owner acknowledges the revocation", async () => {
  using w = await setup(4);
  let a = await join(w.app, "g", { topics: ["orders"], memberId: "a" });
  assert.equal(a.assignment.length, 4);
  let b = await join(w.app, "g", { topics: ["orders"], memberId: "b" });
  assert.deepEqual(b.assignment, [], "b must wait: a still owns everything");
  assert.equal(b.pendingAssignment.length, 2);
  assert.equal(b.state, "Reconciling");
  // a is told to give up two partitions; it keeps the other two
  a = await beat(w.app, "g", a);
  assert.equal(a.assignment.length, 2);
  assert.deepEqual(names(a.pendingRevocation), names(b.pendingAssignment));
  // b still waits: a has not confirmed
  b = await beat(w.app, "g", b);
  assert.deepEqual(b.assignment, []);
  // a confirms by heartbeating with the generation of its last answer
  a = await beat(w.app, "g", a);
  assert.deepEqual(a.pendingRevocation, []);
  b = await beat(w.app, "g", b);
  assert.equal(b.assignment.length, 2);
  assert.equal(b.state, "Stable");
  assertDisjoint([a, b]);
});

Deno.test("a heartbeat with an older generation (a lost answer) releases nothing", async () => {
  using w = await setup(2);
  let a = await join(w.app, "g", { topics: ["orders"], memberId: "a" });
  const stale = a.generation;
  const b = await join(w.app, "g", { topics: ["orders"], memberId: "b" });
  a = await beat(w.app, "g", a); // told to revoke one partition at the new generation
  assert.equal(a.pendingRevocation.length, 1);
  const again = await beat(w.app, "g", { memberId: "a", generation: stale });
  assert.deepEqual(again.pendingRevocation, a.pendingRevocation, "the revocation is sent again");
  assert.deepEqual((await beat(w.app, "g", b)).assignment, []);
  const future = await call(w.app, "POST", "/g/members/a/heartbeat", {
    generation: a.generation + 5,
  });
  assert.equal(future.status, 409);
  assert.equal(errCode(future), "ILLEGAL_GENERATION");
});

Deno.test("a revocation never confirmed is released after the session timeout", async () => {
  using w = await setup(4);
  const a1 = await join(w.app, "g", { topics: ["orders"], memberId: "a", sessionTimeoutMs: 3000 });
  let b = await join(w.app, "g", { topics: ["orders"], memberId: "b", sessionTimeoutMs: 3000 });
  const told = await beat(w.app, "g", a1); // told to revoke two partitions
  assert.equal(told.pendingRevocation.length, 2);
  // a keeps heartbeating, but always with its old generation: it never confirms
  for (let i = 0; i < 3; i++) {
    w.clock.now += 1000;
    assert.equal((await beat(w.app, "g", a1)).pendingRevocation.length, 2);
    b = await beat(w.app, "g", b);
    assert.deepEqual(b.assignment, [], "b waits while a may still be working");
  }
  w.clock.now += 1;
  const late = await call(w.app, "POST", "/g/offsets", {
    memberId: "a",
    generation: told.generation,
    offsets: [{ ...told.pendingRevocation[0], offset: 1 }],
  });
  assert.equal(errCode(late), "ILLEGAL_GENERATION", "a timed-out revocation is not a's to commit");
  b = await beat(w.app, "g", b);
  assert.deepEqual(names(b.assignment), names(told.pendingRevocation));
  const a = await beat(w.app, "g", a1);
  assert.deepEqual(a.pendingRevocation, []);
  assert.deepEqual(
    a.assignment,
    told.assignment,
    "a keeps the partitions it was not asked to give up",
  );
});

Deno.test("re-joining with the same subscription keeps the generation; a new subscription bumps it", async () => {
  using w = await setup(2);
  w.topics.create("pay", 2);
  const a = await join(w.app, "g", { topics: ["orders"], memberId: "a" });
  const same = await join(w.app, "g", { topics: ["orders"], memberId: "a" });
  assert.equal(same.generation, a.generation);
  assert.deepEqual(same.assignment, a.assignment);
  const moved = await join(w.app, "g", { topics: ["pay"], memberId: "a" });
  assert.equal(moved.generation, a.generation + 1);
  assert.deepEqual(names(moved.assignment), ["pay-0", "pay-1"]);
  assert.deepEqual(names(moved.pendingRevocation), ["orders-0", "orders-1"]);
});

Deno.test("a 4th member over 3 partitions stays idle", async () => {
  using w = await setup(3);
  const ms = new Map<string, Answer>();
  for (let i = 0; i < 4; i++) {
    const a = await join(w.app, "g", { topics: ["orders"] });
    ms.set(a.memberId, a);
  }
  await settle(w.app, "g", ms);
  const sizes = [...ms.values()].map((a) => a.assignment.length).sort();
  assert.deepEqual(sizes, [0, 1, 1, 1]);
  assertDisjoint(ms.values());
});

Deno.test("a member that leaves: its partitions reach the others on their next heartbeat", async () => {
  using w = await setup();
  const ms = new Map<string, Answer>();
  for (const id of ["a", "b", "c"]) {
    ms.set(id, await join(w.app, "g", { topics: ["orders"], memberId: id }));
  }
  await settle(w.app, "g", ms);
  const lost = names(ms.get("c")!.assignment);
  assert.equal((await call(w.app, "DELETE", "/g/members/c")).status, 204);
  ms.delete("c");
  for (const [id, a] of ms) ms.set(id, await beat(w.app, "g", a));
  const now = [...ms.values()].flatMap((a) => names(a.assignment));
  for (const n of lost) assert.ok(now.includes(n), `${n} reached a survivor`);
  assert.equal(now.length, 6);
  assert.equal((await ok<{ state: string }>(w.app, "GET", "/g")).state, "Stable");
  const again = await call(w.app, "DELETE", "/g/members/c");
  assert.equal(again.status, 409);
  assert.equal(errCode(again), "UNKNOWN_MEMBER_ID");
});

Deno.test("session expiry: a silent member is removed after sessionTimeoutMs (controlled clock)", async () => {
  using w = await setup();
  const ms = new Map<string, Answer>();
  for (const id of ["a", "b"]) {
    ms.set(
      id,
      await join(w.app, "g", { topics: ["orders"], memberId: id, sessionTimeoutMs: 3000 }),
    );
  }
  await settle(w.app, "g", ms);
  // a keeps heartbeating every second; b stops
  for (let i = 0; i < 3; i++) {
    w.clock.now += 1000;
    ms.set("a", await beat(w.app, "g", ms.get("a")!));
  }
  assert.equal(ms.get("a")!.assignment.length, 3, "at exactly the timeout b is still a member");
  w.clock.now += 1;
  const a = await beat(w.app, "g", ms.get("a")!);
  assert.equal(a.assignment.length, 6, "b expired: a gets everything at once");
  const zombie = await call(w.app, "POST", "/g/members/b/heartbeat", {
    generation: ms.get("b")!.generation,
  });
  assert.equal(zombie.status, 409);
  assert.equal(errCode(zombie), "UNKNOWN_MEMBER_ID");
  const d = await ok<{ members: { memberId: string }[] }>(w.app, "GET", "/g");
  assert.deepEqual(d.members.map((m) => m.memberId), ["a"]);
});

Deno.test("a member that heartbeats after its session expired is removed and told to rejoin", async () => {
  using w = await setup();
  const a = await join(w.app, "g", { topics: ["orders"], memberId: "a", sessionTimeoutMs: 1000 });
  w.clock.now += 1001;
  const r = await call(w.app, "POST", "/g/members/a/heartbeat", { generation: a.generation });
  assert.equal(errCode(r), "UNKNOWN_MEMBER_ID");
  assert.match((r.body!.error as { message: string }).message, /expired/);
  assert.equal((await ok<{ state: string }>(w.app, "GET", "/g")).state, "Empty");
});

Deno.test("a zombie member with an old generation cannot commit; nothing changes", async () => {
  using w = await setup(2);
  const a1 = await join(w.app, "g", { topics: ["orders"], memberId: "a", sessionTimeoutMs: 1000 });
  await ok(w.app, "POST", "/g/offsets", {
    memberId: "a",
    generation: a1.generation,
    offsets: [{ topic: "orders", partition: 0, offset: 5 }],
  });
  // a pauses past its session, is expired by b's join, then rejoins with the same id
  w.clock.now += 5000;
  await join(w.app, "g", { topics: ["orders"], memberId: "b" });
  const zombie = await call(w.app, "POST", "/g/offsets", {
    memberId: "a",
    generation: a1.generation,
    offsets: [{ topic: "orders", partition: 0, offset: 99 }],
  });
  assert.equal(zombie.status, 409);
  assert.equal(errCode(zombie), "UNKNOWN_MEMBER_ID");
  const a2 = await join(w.app, "g", { topics: ["orders"], memberId: "a" });
  assert.ok(a2.generation > a1.generation);
  const stale = await call(w.app, "POST", "/g/offsets", {
    memberId: "a",
    generation: a1.generation,
    offsets: [{ topic: "orders", partition: 0, offset: 99 }],
  });
  assert.equal(stale.status, 409);
  assert.equal(errCode(stale), "ILLEGAL_GENERATION");
  assert.equal((stale.body!.error as { retriable: boolean }).retriable, false);
  const o = await ok<{ offsets: { offset: number }[] }>(w.app, "GET", "/g/offsets");
  assert.deepEqual(o.offsets.map((x) => x.offset), [5]);
});

Deno.test("a commit of several partitions is all-or-nothing", async () => {
  using w = await setup(4);
  let a = await join(w.app, "g", { topics: ["orders"], memberId: "a" });
  let b = await join(w.app, "g", { topics: ["orders"], memberId: "b" });
  a = await beat(w.app, "g", a);
  a = await beat(w.app, "g", a);
  b = await beat(w.app, "g", b);
  const mine = a.assignment.map((tp) => ({ ...tp, offset: 10 }));
  const theirs = b.assignment[0];
  const mixed = await call(w.app, "POST", "/g/offsets", {
    memberId: "a",
    generation: a.generation,
    offsets: [...mine, { ...theirs, offset: 10 }],
  });
  assert.equal(mixed.status, 409);
  assert.equal(errCode(mixed), "ILLEGAL_GENERATION");
  assert.deepEqual((mixed.body!.error as { notOwned: TP[] }).notOwned, [theirs]);
  assert.deepEqual((await ok<{ offsets: unknown[] }>(w.app, "GET", "/g/offsets")).offsets, []);
  await ok(w.app, "POST", "/g/offsets", { memberId: "a", generation: a.generation, offsets: mine });
  const o = await ok<{ offsets: (TP & { offset: number })[] }>(w.app, "GET", "/g/offsets");
  assert.deepEqual(names(o.offsets), names(mine));
  assert.ok(o.offsets.every((x) => x.offset === 10));
});

Deno.test("a member may commit partitions it is giving up until it confirms the revocation", async () => {
  using w = await setup(2);
  let a = await join(w.app, "g", { topics: ["orders"], memberId: "a" });
  await join(w.app, "g", { topics: ["orders"], memberId: "b" });
  a = await beat(w.app, "g", a);
  const revoked = a.pendingRevocation[0];
  await ok(w.app, "POST", "/g/offsets", {
    memberId: "a",
    generation: a.generation,
    offsets: [{ ...revoked, offset: 7 }],
  });
  a = await beat(w.app, "g", a); // confirms
  const late = await call(w.app, "POST", "/g/offsets", {
    memberId: "a",
    generation: a.generation,
    offsets: [{ ...revoked, offset: 8 }],
  });
  assert.equal(errCode(late), "ILLEGAL_GENERATION");
});

Deno.test("bad input gets a clear error and changes nothing", async (t) => {
  using w = await setup(2);
  const a = await join(w.app, "g", { topics: ["orders"], memberId: "a" });
  const commit = (offsets: unknown, extra: Record<string, unknown> = {}) =>
    call(w.app, "POST", "/g/offsets", {
      memberId: "a",
      generation: a.generation,
      offsets,
      ...extra,
    });
  const cases: [string, () => ReturnType<typeof call>, number, string][] = [
    [
      "negative offset",
      () => commit([{ topic: "orders", partition: 0, offset: -1 }]),
      400,
      "INVALID_REQUEST",
    ],
    [
      "offset as a string",
      () => commit([{ topic: "orders", partition: 0, offset: "12" }]),
      400,
      "INVALID_REQUEST",
    ],
    [
      "fractional offset",
      () => commit([{ topic: "orders", partition: 0, offset: 1.5 }]),
      400,
      "INVALID_REQUEST",
    ],
    [
      "offset beyond 2^53",
      () => commit([{ topic: "orders", partition: 0, offset: 2 ** 60 }]),
      400,
      "INVALID_REQUEST",
    ],
    ["missing offset", () => commit([{ topic: "orders", partition: 0 }]), 400, "INVALID_REQUEST"],
    [
      "unknown field in an offset",
      () => commit([{ topic: "orders", partition: 0, offset: 1, x: 1 }]),
      400,
      "INVALID_REQUEST",
    ],
    [
      "duplicate partition",
      () =>
        commit([{ topic: "orders", partition: 0, offset: 1 }, {
          topic: "orders",
          partition: 0,
          offset: 2,
        }]),
      400,
      "INVALID_REQUEST",
    ],
    ["empty offsets", () => commit([]), 400, "INVALID_REQUEST"],
    [
      "partition out of range",
      () => commit([{ topic: "orders", partition: 7, offset: 1 }]),
      404,
      "UNKNOWN_TOPIC_OR_PARTITION",
    ],
    [
      "unknown topic",
      () => commit([{ topic: "nope", partition: 0, offset: 1 }]),
      404,
      "UNKNOWN_TOPIC_OR_PARTITION",
    ],
    [
      "memberId without generation",
      () =>
        call(w.app, "POST", "/g/offsets", {
          memberId: "a",
          offsets: [{ topic: "orders", partition: 0, offset: 1 }],
        }),
      400,
      "INVALID_REQUEST",
    ],
    [
      "unknown member",
      () => commit([{ topic: "orders", partition: 0, offset: 1 }], { memberId: "zz" }),
      409,
      "UNKNOWN_MEMBER_ID",
    ],
    [
      "simple commit while members exist",
      () =>
        call(w.app, "POST", "/g/offsets", {
          offsets: [{ topic: "orders", partition: 0, offset: 1 }],
        }),
      409,
      "UNKNOWN_MEMBER_ID",
    ],
    [
      "commit to an unknown group",
      () =>
        call(w.app, "POST", "/other/offsets", {
          memberId: "a",
          generation: 1,
          offsets: [{ topic: "orders", partition: 0, offset: 1 }],
        }),
      409,
      "UNKNOWN_MEMBER_ID",
    ],
    ["malformed JSON", () => call(w.app, "POST", "/g/offsets", "{nope"), 400, "INVALID_REQUEST"],
    ["invalid group id", () => call(w.app, "GET", "/bad%20group"), 400, "INVALID_GROUP_ID"],
    ["unknown group", () => call(w.app, "GET", "/nobody"), 404, "GROUP_ID_NOT_FOUND"],
    [
      "offsets of an unknown group",
      () => call(w.app, "GET", "/nobody/offsets"),
      404,
      "GROUP_ID_NOT_FOUND",
    ],
    [
      "heartbeat of an unknown member",
      () => call(w.app, "POST", "/g/members/zz/heartbeat", { generation: 1 }),
      409,
      "UNKNOWN_MEMBER_ID",
    ],
    [
      "heartbeat in an unknown group",
      () => call(w.app, "POST", "/nobody/members/a/heartbeat", { generation: 1 }),
      409,
      "UNKNOWN_MEMBER_ID",
    ],
    [
      "heartbeat without generation",
      () => call(w.app, "POST", "/g/members/a/heartbeat", {}),
      400,
      "INVALID_REQUEST",
    ],
    [
      "heartbeat with an unknown field",
      () => call(w.app, "POST", "/g/members/a/heartbeat", { generation: 1, x: 1 }),
      400,
      "INVALID_REQUEST",
    ],
    [
      "join an unknown topic",
      () => call(w.app, "POST", "/g/members", { topics: ["nope"] }),
      404,
      "UNKNOWN_TOPIC_OR_PARTITION",
    ],
    [
      "join with no topics",
      () => call(w.app, "POST", "/g/members", { topics: [] }),
      400,
      "INVALID_REQUEST",
    ],
    [
      "join with a bad topic name",
      () => call(w.app, "POST", "/g/members", { topics: ["a/b"] }),
      400,
      "INVALID_TOPIC_EXCEPTION",
    ],
    [
      "join with a bad member id",
      () => call(w.app, "POST", "/g/members", { topics: ["orders"], memberId: "a b" }),
      400,
      "INVALID_REQUEST",
    ],
    [
      "join with a tiny session timeout",
      () => call(w.app, "POST", "/g/members", { topics: ["orders"], sessionTimeoutMs: 5 }),
      400,
      "INVALID_REQUEST",
    ],
    [
      "join with an unknown assignor",
      () => call(w.app, "POST", "/g/members", { topics: ["orders"], assignor: "magic" }),
      400,
      "INVALID_REQUEST",
    ],
    [
      "join with another assignor than the group's",
      () => call(w.app, "POST", "/g/members", { topics: ["orders"], assignor: "range" }),
      400,
      "INVALID_REQUEST",
    ],
    [
      "join with an unknown field",
      () => call(w.app, "POST", "/g/members", { topics: ["orders"], extra: true }),
      400,
      "INVALID_REQUEST",
    ],
    [
      "leave from an unknown group",
      () => call(w.app, "DELETE", "/nobody/members/a"),
      404,
      "GROUP_ID_NOT_FOUND",
    ],
    [
      "reset while members exist",
      () => call(w.app, "POST", "/g/offsets/reset", { topic: "orders", to: "earliest" }),
      409,
      "NON_EMPTY_GROUP",
    ],
    [
      "reset to a bad target",
      () => call(w.app, "POST", "/g/offsets/reset", { topic: "orders", to: "middle" }),
      400,
      "INVALID_REQUEST",
    ],
    ["delete while members exist", () => call(w.app, "DELETE", "/g"), 409, "NON_EMPTY_GROUP"],
  ];
  for (const [name, run, status, code] of cases) {
    await t.step(name, async () => {
      const r = await run();
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(errCode(r), code);
      const msg = (r.body!.error as { message: string }).message;
      assert.ok(msg.length > 10 && !msg.includes("\n") && !/at .*\.ts:/.test(msg), msg);
    });
  }
  const d = await ok<{ generation: number; members: unknown[]; offsets: unknown[] }>(
    w.app,
    "GET",
    "/g",
  );
  assert.equal(d.generation, a.generation, "no bad request changed the group");
  assert.equal(d.members.length, 1);
  assert.deepEqual(d.offsets, []);
  assert.equal((await call(w.app, "GET", "/other")).status, 404, "no bad request created a group");
});

Deno.test("describe, list, lag, reset and delete", async () => {
  using w = await setup(3);
  w.topics.logs.get("orders")!.forEach((l, p) => {
    l.start = 2;
    l.end = 10 * (p + 1);
  });
  const a = await join(w.app, "g", { topics: ["orders"], memberId: "a", clientId: "app-1" });
  await join(w.app, "h", { topics: ["orders"], memberId: "x" });
  await ok(w.app, "POST", "/g/offsets", {
    memberId: "a",
    generation: a.generation,
    offsets: [{ topic: "orders", partition: 0, offset: 4, metadata: "m" }, {
      topic: "orders",
      partition: 2,
      offset: 30,
    }],
  });
  const lag = await ok<{ offsets: Record<string, unknown>[]; totalLag: number }>(
    w.app,
    "GET",
    "/g/offsets",
  );
  assert.deepEqual(lag.offsets, [
    {
      topic: "orders",
      partition: 0,
      offset: 4,
      metadata: "m",
      logEndOffset: 10,
      lag: 6,
      logEndOffsetAgeMs: 0,
    },
    {
      topic: "orders",
      partition: 2,
      offset: 30,
      metadata: "",
      logEndOffset: 30,
      lag: 0,
      logEndOffsetAgeMs: 0,
    },
  ]);
  assert.equal(lag.totalLag, 6);
  const d = await ok<Record<string, unknown>>(w.app, "GET", "/g");
  assert.equal(d.state, "Stable");
  assert.equal(d.assignor, "sticky");
  assert.equal(d.totalLag, 6);
  const m = (d.members as Record<string, unknown>[])[0];
  assert.equal(m.memberId, "a");
  assert.equal(m.clientId, "app-1");
  assert.equal((m.assignment as TP[]).length, 3);
  assert.deepEqual(
    (await ok<{ groups: unknown[] }>(w.app, "GET", "/")).groups,
    [
      { groupId: "g", state: "Stable", members: 1, generation: 1 },
      { groupId: "h", state: "Stable", members: 1, generation: 1 },
    ],
  );
  // reset and delete need an empty group
  assert.equal((await call(w.app, "DELETE", "/g/members/a")).status, 204);
  const resets: [unknown, number[]][] = [
    ["earliest", [2, 2, 2]],
    ["latest", [10, 20, 30]],
    [{ offset: 15 }, [10, 15, 15]], // clamped to [logStartOffset, logEndOffset]
    [{ timestamp: 12_000 }, [10, 12, 12]], // first offset with ts >= 12 s, else log end
  ];
  for (const [to, want] of resets) {
    const r = await ok<{ offsets: { offset: number }[] }>(w.app, "POST", "/g/offsets/reset", {
      topic: "orders",
      to,
    });
    assert.deepEqual(r.offsets.map((o) => o.offset), want, JSON.stringify(to));
    const got = await ok<{ offsets: { offset: number }[] }>(w.app, "GET", "/g/offsets");
    assert.deepEqual(got.offsets.map((o) => o.offset), want);
  }
  const one = await ok<{ offsets: TP[] }>(w.app, "POST", "/g/offsets/reset", {
    topic: "orders",
    to: "earliest",
    partitions: [1],
  });
  assert.deepEqual(names(one.offsets), ["orders-1"]);
  assert.equal((await ok<{ state: string }>(w.app, "GET", "/g")).state, "Empty");
  // a simple commit is allowed while the group is empty
  await ok(w.app, "POST", "/g/offsets", {
    offsets: [{ topic: "orders", partition: 0, offset: 3 }],
  });
  assert.equal((await call(w.app, "DELETE", "/g")).status, 204);
  assert.equal((await call(w.app, "GET", "/g")).status, 404);
  assert.equal((await call(w.app, "DELETE", "/g")).status, 404);
  assert.equal((await call(w.app, "GET", "/g/offsets")).status, 404);
  assert.deepEqual(
    (await ok<{ groups: { groupId: string }[] }>(w.app, "GET", "/")).groups.map((g) => g.groupId),
    ["h"],
  );
  // a reset on a group that does not exist creates it, as kafka-consumer-groups does
  await ok(w.app, "POST", "/new/offsets/reset", { topic: "orders", to: "latest" });
  assert.equal((await ok<{ offsets: unknown[] }>(w.app, "GET", "/new/offsets")).offsets.length, 3);
});

Deno.test("lag of a partition this broker does not lead is null, the rest still listed", async () => {
  using w = await setup(2);
  w.topics.logs.get("orders")![0].end = 50;
  w.topics.logs.get("orders")![1].hosted = false;
  await ok(w.app, "POST", "/g/offsets", {
    offsets: [{ topic: "orders", partition: 0, offset: 20 }, {
      topic: "orders",
      partition: 1,
      offset: 5,
    }],
  });
  const o = await ok<
    { offsets: { lag: number | null; logEndOffset: number | null }[]; totalLag: number }
  >(
    w.app,
    "GET",
    "/g/offsets",
  );
  assert.deepEqual(o.offsets.map((x) => [x.logEndOffset, x.lag]), [[50, 30], [null, null]]);
  assert.equal(o.totalLag, 30);
});

Deno.test("a topic that gains partitions is rebalanced on the next heartbeat", async () => {
  using w = await setup(2);
  const ms = new Map<string, Answer>();
  for (const id of ["a", "b"]) {
    ms.set(id, await join(w.app, "g", { topics: ["orders"], memberId: id }));
  }
  await settle(w.app, "g", ms);
  const gen = ms.get("a")!.generation;
  w.topics.grow("orders", 6);
  await settle(w.app, "g", ms);
  assert.ok(ms.get("a")!.generation > gen);
  assert.deepEqual([...ms.values()].map((a) => a.assignment.length), [3, 3]);
  assertDisjoint(ms.values());
});

Deno.test("range and round-robin assignors through the API", async () => {
  using w = await setup(3);
  w.topics.create("pay", 3);
  for (
    const [assignor, want] of [
      ["range", { a: ["orders-0", "orders-1", "pay-0", "pay-1"], b: ["orders-2", "pay-2"] }],
      ["roundrobin", { a: ["orders-0", "orders-2", "pay-1"], b: ["orders-1", "pay-0", "pay-2"] }],
    ] as const
  ) {
    const g = `g-${assignor}`;
    const ms = new Map<string, Answer>();
    ms.set("a", await join(w.app, g, { topics: ["orders", "pay"], memberId: "a", assignor }));
    ms.set("b", await join(w.app, g, { topics: ["orders", "pay"], memberId: "b" }));
    await settle(w.app, g, ms);
    assert.deepEqual(names(ms.get("a")!.assignment), want.a, assignor);
    assert.deepEqual(names(ms.get("b")!.assignment), want.b, assignor);
    assert.equal((await ok<{ assignor: string }>(w.app, "GET", `/${g}`)).assignor, assignor);
  }
});

Deno.test("group state survives reopening the KV file", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/meta.kv`;
  const topics = new Topics();
  topics.create("orders", 4, 100);
  const clock = { now: 1_000_000 };
  let a: Answer;
  {
    const kv = await Deno.openKv(path);
    const app = groupRoutes(deps(kv, topics, clock));
    a = await join(app, "g", { topics: ["orders"], memberId: "a" });
    await ok(app, "POST", "/g/offsets", {
      memberId: "a",
      generation: a.generation,
      offsets: [{ topic: "orders", partition: 1, offset: 40 }],
    });
    kv.close();
  }
  const kv = await Deno.openKv(path);
  try {
    const app = groupRoutes(deps(kv, topics, clock));
    const again = await beat(app, "g", a);
    assert.deepEqual(again.assignment, a.assignment);
    assert.equal(again.generation, a.generation);
    const o = await ok<{ offsets: { partition: number; offset: number; lag: number }[] }>(
      app,
      "GET",
      "/g/offsets",
    );
    assert.deepEqual(o.offsets.map((x) => [x.partition, x.offset, x.lag]), [[1, 40, 60]]);
  } finally {
    kv.close();
  }
});

Deno.test("two brokers (two KV handles on one file) serve one group", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/meta.kv`;
  const topics = new Topics();
  topics.create("orders", 6);
  const clock = { now: 1_000_000 };
  const kv1 = await Deno.openKv(path);
  const kv2 = await Deno.openKv(path);
  try {
    const b1 = groupRoutes(deps(kv1, topics, clock));
    const b2 = groupRoutes(deps(kv2, topics, clock));
    const ms = new Map<string, Answer>();
    // joins race through both brokers at once
    const joined = await Promise.all([
      join(b1, "g", { topics: ["orders"], memberId: "a" }),
      join(b2, "g", { topics: ["orders"], memberId: "b" }),
      join(b1, "g", { topics: ["orders"], memberId: "c" }),
    ]);
    for (const j of joined) ms.set(j.memberId, j);
    assertDisjoint(ms.values());
    // heartbeats alternate between brokers
    for (
      let round = 0;
      round < 10 && ![...ms.values()].every((x) => x.state === "Stable");
      round++
    ) {
      await Promise.all([...ms].map(async ([id, x], i) => {
        ms.set(id, await beat(i % 2 ? b1 : b2, "g", x));
      }));
      assertDisjoint(ms.values());
    }
    assert.deepEqual([...ms.values()].map((x) => x.assignment.length), [2, 2, 2]);
    const d1 = await ok<{ generation: number; members: unknown[] }>(b1, "GET", "/g");
    const d2 = await ok<{ generation: number; members: unknown[] }>(b2, "GET", "/g");
    assert.equal(d1.members.length, 3);
    assert.deepEqual(d1, d2);
    assert.equal(d1.generation, 3, "three joins, three generations: no bump was lost or doubled");
  } finally {
    kv1.close();
    kv2.close();
  }
});
