/**
 * The idempotent producer state of a partition log, as Kafka's ProducerStateManagerTest
 * and UnifiedLogTest check it: duplicates inside the 5-batch window get their original
 * offsets and write nothing, gaps and batches older than the window are
 * OUT_OF_ORDER_SEQUENCE_NUMBER, old epochs are fenced; the state survives a clean reopen,
 * a SIGKILL, truncation, retention and damaged snapshots.
 */
import assert from "node:assert/strict";
import { RillError } from "../../src/protocol/errors.ts";
import { type AppendResult, incrementSequence, PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { batchOf, readAll } from "./_fixtures.ts";
import { idemBatch, storedBatches } from "./_producer_fixtures.ts";

async function rejectsWith(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof RillError, String(e));
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

async function snapshots(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".snapshot")) out.push(e.name);
  return out.sort();
}

const P = 42;
const send = (log: PartitionLog, baseSequence: number, count = 2, producerEpoch = 0) =>
  log.append(idemBatch({ producerId: P, producerEpoch, baseSequence, count }));

Deno.test("a retry of one of the last 5 batches gets its original offsets and writes nothing", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  await log.append(batchOf(["plain"])); // offset 0: not idempotent
  const originals: AppendResult[] = [];
  for (let i = 0; i < 6; i++) originals.push(await send(log, i * 2));
  assert.deepEqual(originals.map((r) => r.baseOffset), [1, 3, 5, 7, 9, 11]);
  const end = log.logEndOffset;
  const size = log.size;
  // The last 5 (sequences 2..11) are in the window, oldest edge included.
  for (let i = 1; i < 6; i++) {
    const again = await send(log, i * 2);
    assert.deepEqual(again, { ...originals[i], duplicate: true }, `retry of batch ${i}`);
  }
  assert.equal(log.logEndOffset, end);
  assert.equal(log.size, size);
  // Sequence 0 fell out of the window: Kafka answers OUT_OF_ORDER_SEQUENCE_NUMBER.
  await rejectsWith(send(log, 0), "OUT_OF_ORDER_SEQUENCE_NUMBER", /sent sequence 0, expected 12/);
  // A batch overlapping a stored one without matching it is not a duplicate either.
  await rejectsWith(send(log, 2, 3), "OUT_OF_ORDER_SEQUENCE_NUMBER");
  assert.equal(log.logEndOffset, end);
  const next = await send(log, 12);
  assert.deepEqual([next.baseOffset, next.duplicate], [end, undefined]);
  // Now sequence 2 is out of the window too; 4 is its new oldest edge.
  await rejectsWith(send(log, 2), "OUT_OF_ORDER_SEQUENCE_NUMBER");
  assert.deepEqual(await send(log, 4), { ...originals[2], duplicate: true });
  const values = (await readAll(log, 0)).map((r) => r.value);
  assert.equal(values.length, 15);
  assert.deepEqual(values.slice(1), Array.from({ length: 14 }, (_, i) => `p${P}e0s${i}`));
  await log.close();
});

Deno.test("a gap in the sequence is OUT_OF_ORDER_SEQUENCE_NUMBER and appends nothing", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  await send(log, 0, 3);
  await rejectsWith(send(log, 4), "OUT_OF_ORDER_SEQUENCE_NUMBER", /expected 3/);
  await rejectsWith(send(log, 2), "OUT_OF_ORDER_SEQUENCE_NUMBER");
  assert.equal(log.logEndOffset, 3);
  assert.equal((await send(log, 3)).baseOffset, 3);
  // Another producer is independent, and a producer the log does not know may start
  // anywhere (Kafka since KIP-360: its state may have been expired or deleted).
  const other = await log.append(
    idemBatch({ producerId: 9, producerEpoch: 3, baseSequence: 77, count: 1 }),
  );
  assert.equal(other.baseOffset, 5);
  assert.equal(log.producerState(9)?.batches[0].baseSequence, 77);
  await log.close();
});

Deno.test("an older producer epoch is fenced; a newer one must start at sequence 0", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  await send(log, 0, 2, 1);
  await send(log, 2, 2, 1);
  await rejectsWith(send(log, 4, 2, 0), "INVALID_PRODUCER_EPOCH", /epoch 0, older than .* 1/);
  await rejectsWith(send(log, 4, 2, 2), "OUT_OF_ORDER_SEQUENCE_NUMBER", /epoch 2 at sequence 4/);
  assert.equal((await send(log, 0, 2, 2)).baseOffset, 4);
  assert.equal(log.producerState(P)?.producerEpoch, 2);
  // The old epoch's batches are no longer duplicates: they are fenced.
  await rejectsWith(send(log, 2, 2, 1), "INVALID_PRODUCER_EPOCH");
  assert.deepEqual(await send(log, 0, 2, 2), {
    baseOffset: 4,
    lastOffset: 5,
    maxTimestamp: log.producerState(P)!.batches[0].maxTimestamp,
    duplicate: true,
  });
  assert.equal(log.logEndOffset, 6);
  await log.close();
});

Deno.test("sequence numbers wrap from 2^31-1 to 0 as Kafka's", async () => {
  assert.equal(incrementSequence(2147483646, 2), 0);
  assert.equal(incrementSequence(2147483647, 1), 0);
  assert.equal(incrementSequence(5, 3), 8);
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  await send(log, 2147483645, 2); // 2147483645..2147483646
  await send(log, 2147483647, 3); // 2147483647, 0, 1
  assert.equal(log.producerState(P)?.batches.at(-1)?.lastSequence, 1);
  await rejectsWith(send(log, 0), "OUT_OF_ORDER_SEQUENCE_NUMBER", /expected 2/);
  assert.equal((await send(log, 2, 1)).baseOffset, 5);
  assert.equal((await send(log, 2147483647, 3)).duplicate, true);
  await log.close();
});

Deno.test("an idempotent batch must be appended alone", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  const two = new Uint8Array([
    ...idemBatch({ producerId: P, producerEpoch: 0, baseSequence: 0, count: 1 }),
    ...idemBatch({ producerId: P, producerEpoch: 0, baseSequence: 1, count: 1 }),
  ]);
  await rejectsWith(log.append(two), "INVALID_RECORD", /appended alone/);
  assert.equal(log.logEndOffset, 0);
  await log.close();
});

Deno.test("appends queued together are checked against the state including each other", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  await log.append(batchOf(["first"])); // keeps the writer busy while the rest queue up
  const writesBefore = log.writeCalls;
  // Sequences 0,2,4,... with retries of queued (not yet written) batches, a gap, a stale
  // epoch and a second producer, all queued before any is written.
  const plan: [number, number, number, string][] = [
    [P, 0, 0, "new"],
    [P, 0, 2, "new"],
    [P, 0, 0, "dup"],
    [7, 0, 0, "new"],
    [P, 0, 4, "new"],
    [P, 0, 2, "dup"],
    [P, 0, 10, "ooo"],
    [7, 0, 2, "new"],
    [P, 0, 6, "new"],
    [7, 0, 0, "dup"],
  ];
  const settled = await Promise.allSettled(
    plan.map(([producerId, producerEpoch, baseSequence]) =>
      log.append(idemBatch({ producerId, producerEpoch, baseSequence, count: 2 }))
    ),
  );
  assert.ok(log.writeCalls - writesBefore < plan.length, "the appends shared write calls");
  const offsetOf = new Map<string, number>();
  let expected = 1;
  plan.forEach(([producerId, , seq, kind], i) => {
    const s = settled[i];
    if (kind === "ooo") {
      assert.equal(s.status, "rejected");
      assert.equal((s as PromiseRejectedResult).reason.code, "OUT_OF_ORDER_SEQUENCE_NUMBER");
      return;
    }
    assert.equal(s.status, "fulfilled", `append ${i}`);
    const r = (s as PromiseFulfilledResult<{ baseOffset: number; duplicate?: boolean }>).value;
    const key = `${producerId}/${seq}`;
    if (kind === "new") {
      assert.deepEqual([r.baseOffset, r.duplicate], [expected, undefined], `append ${i}`);
      offsetOf.set(key, expected);
      expected += 2;
    } else {
      assert.deepEqual([r.baseOffset, r.duplicate], [offsetOf.get(key), true], `append ${i}`);
    }
  });
  assert.equal(log.logEndOffset, expected);
  const batches = await storedBatches(log);
  assert.deepEqual(
    batches.slice(1).map((b) => `${b.producerId}/${b.baseSequence}`),
    ["42/0", "42/2", "7/0", "42/4", "7/2", "42/6"],
  );
  await log.close();
});

Deno.test("producer state survives a clean reopen through its snapshot", async () => {
  await using dir = await tempDir();
  let log = await PartitionLog.open(dir.path, { segmentBytes: 250 });
  const originals: AppendResult[] = [];
  for (let i = 0; i < 8; i++) originals.push(await send(log, i * 2));
  assert.ok(log.segmentCount > 2);
  await log.close();
  const names = await snapshots(dir.path);
  assert.ok(names.includes(`${String(16).padStart(20, "0")}.snapshot`), names.join());
  log = await PartitionLog.open(dir.path, { segmentBytes: 250 });
  assert.equal(log.recovery.clean, true);
  assert.deepEqual(await send(log, 14), { ...originals[7], duplicate: true });
  assert.deepEqual(await send(log, 6), { ...originals[3], duplicate: true });
  await rejectsWith(send(log, 4), "OUT_OF_ORDER_SEQUENCE_NUMBER");
  assert.equal((await send(log, 16)).baseOffset, 16);
  await log.close();
});

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.name === ".lock") continue;
    // A snapshot being written in the background may be renamed away mid-copy, as a crash
    // at that moment would find it one way or the other.
    await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
  }
}

Deno.test("without snapshots, or with damaged ones, the state is rebuilt from the log", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, { segmentBytes: 250 });
  const originals: AppendResult[] = [];
  for (let i = 0; i < 10; i++) originals.push(await send(log, i * 2));
  await log.close();
  const check = async (what: string) => {
    const reopened = await PartitionLog.open(dir.path, { segmentBytes: 250 });
    assert.deepEqual(await send(reopened, 18), { ...originals[9], duplicate: true }, what);
    assert.deepEqual(await send(reopened, 10), { ...originals[5], duplicate: true }, what);
    await rejectsWith(send(reopened, 8), "OUT_OF_ORDER_SEQUENCE_NUMBER");
    assert.equal(reopened.logEndOffset, 20, what);
    return reopened;
  };
  // The newest snapshot garbled: it is deleted and an older one plus the log tail used.
  const names = await snapshots(dir.path);
  const newest = `${dir.path}/${names.at(-1)}`;
  const bytes = await Deno.readFile(newest);
  bytes[bytes.length - 3] ^= 0xff;
  await Deno.writeFile(newest, bytes);
  let reopened = await check("damaged snapshot");
  assert.match(reopened.recovery.message ?? "", /fails its CRC; deleted/);
  await reopened.close();
  // A snapshot past the log end (the log was cut after it was taken) and a half-written
  // one are deleted, not used.
  const ahead = `${dir.path}/${String(999).padStart(20, "0")}.snapshot`;
  await Deno.writeFile(ahead, await Deno.readFile(`${dir.path}/${(await snapshots(dir.path))[0]}`));
  await Deno.writeFile(`${ahead}.tmp`, new Uint8Array(3));
  reopened = await check("snapshot past the log end");
  assert.ok(!(await snapshots(dir.path)).includes(ahead.split("/").pop()!));
  await assert.rejects(Deno.stat(`${ahead}.tmp`), Deno.errors.NotFound);
  await reopened.close();
  // No snapshot at all: the whole log's batch headers.
  for (const name of await snapshots(dir.path)) await Deno.remove(`${dir.path}/${name}`);
  reopened = await check("no snapshot");
  await reopened.close();
});

Deno.test("producer state after a crash: the snapshot of the last roll plus the log tail", async () => {
  await using dir = await tempDir();
  const live = `${dir.path}/live`;
  const log = await PartitionLog.open(live, { segmentBytes: 250 });
  const originals: AppendResult[] = [];
  for (let i = 0; i < 9; i++) originals.push(await send(log, i * 2));
  // The files as a crash would leave them (no close: no snapshot at the log end), once the
  // snapshots of the rolls are written.
  await log.settled();
  const crashed = `${dir.path}/crashed`;
  await copyDir(live, crashed);
  await log.close();
  const reopened = await PartitionLog.open(crashed, { segmentBytes: 250 });
  assert.equal(reopened.recovery.clean, false);
  assert.ok((await snapshots(crashed)).length >= 1);
  for (let i = 4; i < 9; i++) {
    assert.deepEqual(await send(reopened, i * 2), { ...originals[i], duplicate: true });
  }
  assert.equal((await send(reopened, 18)).baseOffset, 18);
  await reopened.close();
});

Deno.test("truncateTo() rewinds the producer state to the batches left", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, { segmentBytes: 250 });
  const originals: AppendResult[] = [];
  for (let i = 0; i < 10; i++) originals.push(await send(log, i * 2));
  await log.truncateTo(13); // cuts batch 6 (offsets 12..13) and everything after
  assert.equal(log.logEndOffset, 12);
  assert.ok(
    (await snapshots(dir.path)).every((n) => Number(n.slice(0, 20)) <= 12),
    "snapshots past the new end are deleted",
  );
  assert.equal(log.producerState(P)?.batches.at(-1)?.lastSequence, 11);
  // The cut batches are new again, not duplicates; the ones left still are.
  await rejectsWith(send(log, 14), "OUT_OF_ORDER_SEQUENCE_NUMBER", /expected 12/);
  assert.deepEqual(await send(log, 10), { ...originals[5], duplicate: true });
  const again = await send(log, 12);
  assert.deepEqual([again.baseOffset, again.lastOffset, again.duplicate], [12, 13, undefined]);
  await log.truncateTo(0);
  assert.equal(log.producerState(P), undefined);
  assert.deepEqual(await snapshots(dir.path), []);
  await log.close();
});

Deno.test("a follower's appends build the state a new leader deduplicates with", async () => {
  await using dir = await tempDir();
  const leader = await PartitionLog.open(`${dir.path}/leader`);
  const follower = await PartitionLog.open(`${dir.path}/follower`);
  const originals: AppendResult[] = [];
  for (let i = 0; i < 4; i++) {
    originals.push(await send(leader, i * 3, 3));
    const r = await leader.read(originals[i].baseOffset, 1 << 20);
    await follower.append(r.bytes, { assignOffsets: false });
  }
  // Replication does not check: an out-of-order batch written by a leader is taken as is.
  const odd = await leader.append(
    idemBatch({ producerId: 5, producerEpoch: 0, baseSequence: 50, count: 1 }),
  );
  await follower.append((await leader.read(odd.baseOffset, 1 << 20)).bytes, {
    assignOffsets: false,
  });
  await leader.close();
  // The follower becomes leader: the producer's retry is recognised.
  assert.deepEqual(await send(follower, 9, 3), { ...originals[3], duplicate: true });
  assert.equal((await send(follower, 12, 3)).baseOffset, 13);
  await follower.close();
});

Deno.test("retention keeps the producer state; expiry forgets idle producers", async () => {
  await using dir = await tempDir();
  let now = Date.now();
  const log = await PartitionLog.open(dir.path, { segmentBytes: 250 }, { now: () => now });
  for (let i = 0; i < 10; i++) await send(log, i * 2);
  await log.deleteRecordsBefore(16);
  const first = Number((await snapshots(dir.path))[0].slice(0, 20));
  assert.ok(first >= 12, `snapshots below the first segment are gone (first ${first})`);
  await rejectsWith(send(log, 30), "OUT_OF_ORDER_SEQUENCE_NUMBER");
  assert.equal((await send(log, 20)).duplicate, undefined);
  // Old event-time timestamps do not count: expiry is by when the log last saw a producer.
  await log.append(idemBatch({ producerId: 3, producerEpoch: 0, baseSequence: 0, count: 1 }, 1e12));
  await log.applyRetention();
  assert.equal(log.producerState(3)?.batches.length, 1);
  now = Date.now() + 24 * 60 * 60 * 1000 + 1000;
  await log.applyRetention();
  assert.equal(log.producerState(P), undefined, "idle for over a day");
  assert.equal(log.producerState(3), undefined);
  assert.equal((await send(log, 30)).baseOffset, 23, "an unknown producer may start anywhere");
  await log.close();
});

Deno.test("appends made while a batch to an idle log is written are checked against it, and go out together", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  await log.append(batchOf(["plain"])); // offset 0; the writer is idle again
  const writes = log.writeCalls;
  // The first finds the writer idle; the others are made before its write settles: each is
  // checked against the producer state with the batches before it, then written as a group.
  const [first, second, retry, gap] = await Promise.allSettled([
    send(log, 0),
    send(log, 2),
    send(log, 0),
    send(log, 9),
  ]);
  assert.deepEqual(first, {
    status: "fulfilled",
    value: {
      baseOffset: 1,
      lastOffset: 2,
      maxTimestamp: (first as PromiseFulfilledResult<AppendResult>).value.maxTimestamp,
    },
  });
  assert.equal(second.status === "fulfilled" && second.value.baseOffset, 3);
  assert.deepEqual(retry.status === "fulfilled" && retry.value, {
    ...(first as PromiseFulfilledResult<AppendResult>).value,
    duplicate: true,
  });
  assert.ok(gap.status === "rejected" && gap.reason instanceof RillError);
  assert.equal(gap.reason.code, "OUT_OF_ORDER_SEQUENCE_NUMBER");
  assert.equal(log.writeCalls - writes, 2, "the first alone, then the second");
  assert.equal(log.logEndOffset, 5);
  assert.equal((await readAll(log)).length, 5);
  await log.close();
});
