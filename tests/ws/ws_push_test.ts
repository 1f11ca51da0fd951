/**
 * Push subscriptions over the WebSocket connection (src/ws/subscription.ts,
 * `WsConnection.subscribe`): records pushed as they are appended, in order and once each,
 * only as far as the client granted credit; per-partition errors; read ACLs; unsubscribe.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { WsConnection, type WsFetchAnswer } from "../../src/client/ws_connection.ts";
import { decodeBatch, splitBatches } from "../../src/protocol/record_batch.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { serveBroker } from "./_served.ts";

/** Pushes as they arrive, awaitable one by one. */
function inbox() {
  const got: WsFetchAnswer[] = [];
  let waiter: (() => void) | null = null;
  return {
    got,
    push(a: WsFetchAnswer) {
      got.push(a);
      waiter?.();
      waiter = null;
    },
    async next(count: number): Promise<void> {
      while (got.length < count) await new Promise<void>((r) => waiter = r);
    },
  };
}

const values = (a: WsFetchAnswer, topic: string, partition: number) =>
  a.partitions.filter((p) => p.topic === topic && p.partition === partition).flatMap((p) =>
    p.error === undefined
      ? splitBatches(p.bytes).flatMap((b) =>
        decodeBatch(b).records.map((r) => new TextDecoder().decode(r.value!))
      )
      : []
  );

Deno.test("ws push: records are pushed in order, once each, as far as credit allows", async () => {
  await using s = await serveBroker();
  await s.topic("t", 2);
  const producer = new Rill({ brokers: [s.url] }).producer({ acks: 1, idempotent: false });
  const conn = await WsConnection.open(s.url);
  const box = inbox();
  const sub = await conn.subscribe({
    partitions: [{ topic: "t", partition: 0, offset: 0 }, { topic: "t", partition: 1, offset: 0 }],
    credit: 1,
  }, box.push);
  try {
    // One record: one push.
    await producer.send({ topic: "t", messages: [{ value: "p0-0", partition: 0 }] });
    await box.next(1);
    assert.deepEqual(values(box.got[0], "t", 0), ["p0-0"]);
    // No credit left: the next records wait at the broker, however many.
    for (let i = 1; i <= 5; i++) {
      await producer.send({ topic: "t", messages: [{ value: `p0-${i}`, partition: 0 }] });
    }
    await producer.send({ topic: "t", messages: [{ value: "p1-0", partition: 1 }] });
    // A fetch on the same connection is answered meanwhile: the connection is not blocked.
    const fetched = await conn.fetch({ partitions: [{ topic: "t", partition: 0, offset: 0 }] });
    assert.equal(fetched.partitions[0].error, undefined);
    assert.equal(box.got.length, 1, "no push without credit");
    // Credit: the rest comes, from where the last push ended, nothing twice.
    sub.grant(10);
    while (
      box.got.flatMap((a) => values(a, "t", 0)).length < 6 ||
      box.got.flatMap((a) => values(a, "t", 1)).length < 1
    ) await box.next(box.got.length + 1);
    assert.deepEqual(
      box.got.flatMap((a) => values(a, "t", 0)),
      ["p0-0", "p0-1", "p0-2", "p0-3", "p0-4", "p0-5"],
    );
    assert.deepEqual(box.got.flatMap((a) => values(a, "t", 1)), ["p1-0"]);
    const last = box.got[box.got.length - 1].partitions.find((p) => p.partition === 0);
    assert.ok(last === undefined || (last.error === undefined && last.nextOffset === 6));
    // Unsubscribed: nothing more is pushed, and the connection goes on.
    await sub.cancel();
    const before = box.got.length;
    await producer.send({ topic: "t", messages: [{ value: "late", partition: 0 }] });
    const after = await conn.fetch({ partitions: [{ topic: "t", partition: 0, offset: 6 }] });
    assert.equal(after.partitions[0].error, undefined);
    assert.equal(box.got.length, before, "no push after unsubscribe");
  } finally {
    conn.close();
    await producer.disconnect();
  }
});

Deno.test("ws push: a partition's error is pushed and it leaves; bad or unauthorized subscribes are refused", async () => {
  await using s = await serveBroker({ security: { auth: true } });
  await s.topic("t");
  await s.topic("secret");
  const admin = await WsConnection.open(s.url, { auth: s.admin });
  const box = inbox();
  await admin.subscribe({
    partitions: [{ topic: "t", partition: 0, offset: 0 }, { topic: "t", partition: 7, offset: 0 }],
    credit: 5,
  }, box.push);
  await box.next(1);
  const missing = box.got[0].partitions.find((p) => p.partition === 7)!;
  assert.ok(missing.error instanceof RillError);
  assert.equal(missing.error.code, "UNKNOWN_TOPIC_OR_PARTITION");
  // Partition 0 stays subscribed.
  const producer = new Rill({ brokers: [s.url], auth: s.admin }).producer({ acks: 1 });
  await producer.send({ topic: "t", messages: [{ value: "x" }] });
  await box.next(2);
  assert.deepEqual(values(box.got[1], "t", 0), ["x"]);
  assert.equal(box.got[1].partitions.some((p) => p.partition === 7), false);
  await producer.disconnect();
  for (
    const [req, code] of [
      [{ partitions: [] }, "INVALID_REQUEST"],
      [{ partitions: [{ topic: "t", partition: 0, offset: 0 }], credit: 0 }, "INVALID_REQUEST"],
    ] as const
  ) {
    await assert.rejects(
      admin.subscribe(req as never, () => {}),
      (e: unknown) => e instanceof RillError && e.code === code,
    );
  }
  admin.close();
  // A principal with the read ACL of "t" only.
  const res = await fetch(`${s.url}/v1/auth/keys`, {
    method: "POST",
    body: JSON.stringify({ principal: "reader" }),
    headers: { "content-type": "application/json", authorization: `Bearer ${s.admin}` },
  });
  const { token } = await res.json();
  const acl = await fetch(`${s.url}/v1/auth/acls`, {
    method: "POST",
    body: JSON.stringify({
      principal: "reader",
      resourceType: "topic",
      resourceName: "t",
      operation: "read",
    }),
    headers: { "content-type": "application/json", authorization: `Bearer ${s.admin}` },
  });
  assert.equal(acl.status, 201);
  await acl.body?.cancel();
  const reader = await WsConnection.open(s.url, { auth: token });
  try {
    await assert.rejects(
      reader.subscribe({
        partitions: [{ topic: "t", partition: 0, offset: 0 }, {
          topic: "secret",
          partition: 0,
          offset: 0,
        }],
      }, () => {}),
      (e: unknown) => e instanceof RillError && e.code === "TOPIC_AUTHORIZATION_FAILED",
    );
    const mine = inbox();
    await reader.subscribe({ partitions: [{ topic: "t", partition: 0, offset: 0 }] }, mine.push);
    await mine.next(1);
    assert.deepEqual(values(mine.got[0], "t", 0), ["x"]);
  } finally {
    reader.close();
  }
});

Deno.test("ws push: a subscription of many partitions pushes each partition's records once, in order", async () => {
  await using s = await serveBroker();
  await s.topic("many", 20);
  const producer = new Rill({ brokers: [s.url] }).producer({ acks: 1, idempotent: false });
  const conn = await WsConnection.open(s.url);
  const box = inbox();
  await conn.subscribe({
    partitions: Array.from({ length: 20 }, (_, p) => ({ topic: "many", partition: p, offset: 0 })),
    credit: 100,
  }, box.push);
  try {
    const sent = new Map<number, string[]>();
    for (const round of [0, 1, 2]) {
      for (const p of [0, 7, 19]) {
        const value = `p${p}-${round}`;
        await producer.send({ topic: "many", messages: [{ value, partition: p }] });
        sent.set(p, [...(sent.get(p) ?? []), value]);
        const pushed = () =>
          [0, 7, 19].reduce(
            (n, q) => n + box.got.reduce((m, a) => m + values(a, "many", q).length, 0),
            0,
          );
        const expected = [...sent.values()].reduce((n, v) => n + v.length, 0);
        while (pushed() < expected) await box.next(box.got.length + 1);
      }
    }
    for (const p of [0, 7, 19]) {
      assert.deepEqual(box.got.flatMap((a) => values(a, "many", p)), sent.get(p));
    }
    for (const a of box.got) {
      assert.ok(
        a.partitions.every((p) => [0, 7, 19].includes(p.partition)),
        "only partitions with records",
      );
    }
  } finally {
    conn.close();
    await producer.disconnect();
  }
});
