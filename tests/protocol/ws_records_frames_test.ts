/**
 * The binary records push frame (src/protocol/ws_records_frames.ts): exactly the bytes of the
 * layout documented in docs/http-api.md for any field values, and back; pushes it cannot
 * carry; frames that cannot be read.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeRecordsFrame,
  encodeRecordsFrame,
  RecordsFrameError,
  type RecordsFramePartition,
} from "../../src/protocol/ws_records_frames.ts";

const topicArb = fc.stringMatching(/^[a-zA-Z0-9._-]{1,249}$/);
const offsetArb = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const partitionArb = fc.record({
  topic: topicArb,
  partition: fc.integer({ min: 0, max: 0x7fffffff }),
  nextOffset: offsetArb,
  highWatermark: offsetArb,
  logStartOffset: offsetArb,
  bytes: fc.uint8Array({ maxLength: 200 }),
});

/** The documented layout, written with a DataView. */
function reference(id: number, parts: RecordsFramePartition[]): Uint8Array {
  const enc = new TextEncoder();
  const head = 14 + parts.reduce((n, p) => n + 33 + p.topic.length, 0);
  const out = new Uint8Array(head + parts.reduce((n, p) => n + p.bytes.length, 0));
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xfffffffb);
  v.setBigUint64(4, BigInt(id));
  v.setUint16(12, parts.length);
  let at = 14;
  let data = head;
  for (const p of parts) {
    v.setUint8(at, p.topic.length);
    out.set(enc.encode(p.topic), at + 1);
    at += 1 + p.topic.length;
    v.setUint32(at, p.partition);
    v.setBigInt64(at + 4, BigInt(p.nextOffset));
    v.setBigInt64(at + 12, BigInt(p.highWatermark));
    v.setBigInt64(at + 20, BigInt(p.logStartOffset));
    v.setUint32(at + 28, p.bytes.length);
    at += 32;
    out.set(p.bytes, data);
    data += p.bytes.length;
  }
  return out;
}

const plain = (parts: RecordsFramePartition[]) =>
  parts.map((p) => ({ ...p, bytes: Array.from(p.bytes) }));

Deno.test("ws records frames: a push is the documented bytes, and decodes back", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.array(partitionArb, { minLength: 1, maxLength: 5 }),
      (id, parts) => {
        const bytes = encodeRecordsFrame(id, parts.map((p) => ({ ...p, error: null })))!;
        assert.deepEqual(bytes, reference(id, parts));
        for (const copy of [false, true]) {
          const back = decodeRecordsFrame(bytes, copy);
          assert.equal(back.id, id);
          assert.deepEqual(plain(back.partitions), plain(parts));
          for (const p of back.partitions) {
            assert.equal(p.bytes.buffer === bytes.buffer, !copy, "copied only when asked");
          }
        }
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("ws records frames: a push with an error or a name it cannot carry is left to JSON", () => {
  const ok = {
    topic: "t",
    partition: 0,
    nextOffset: 1,
    highWatermark: 1,
    logStartOffset: 0,
    bytes: new Uint8Array([1]),
    error: null,
  };
  assert.notEqual(encodeRecordsFrame(1, [ok]), null);
  assert.equal(encodeRecordsFrame(1, [ok, { ...ok, partition: 1, error: new Error("x") }]), null);
  assert.equal(encodeRecordsFrame(1, [{ ...ok, topic: "é" }]), null);
  assert.equal(encodeRecordsFrame(1, [{ ...ok, topic: "x".repeat(250) }]), null);
  assert.equal(encodeRecordsFrame(1, []), null);
});

Deno.test("ws records frames: a frame that cannot be read is refused with why", () => {
  const good = encodeRecordsFrame(7, [{
    topic: "orders",
    partition: 3,
    nextOffset: 10,
    highWatermark: 12,
    logStartOffset: 0,
    bytes: new Uint8Array([1, 2, 3, 4]),
    error: null,
  }])!;
  const refused = (m: Uint8Array, id: number | null, why: RegExp) =>
    assert.throws(
      () => decodeRecordsFrame(m),
      (e: unknown) => e instanceof RecordsFrameError && e.id === id && why.test(e.message),
    );
  refused(good.subarray(0, 8), null, /at least 14 bytes/);
  refused(good.subarray(0, 13), 7, /at least 14 bytes/);
  const bigId = good.slice();
  bigId[4] = 0x00;
  bigId[5] = 0x20; // 2^53
  refused(bigId, null, /below 2\^53/);
  const none = good.slice(0, 14);
  none[12] = 0;
  none[13] = 0;
  refused(none, 7, /names no partition/);
  refused(good.subarray(0, 14 + 10), 7, /entry 0 .* runs past its end/);
  const emptyName = good.slice();
  emptyName[14] = 0;
  refused(emptyName, 7, /entry 0 .* empty topic name/);
  const notAscii = good.slice();
  notAscii[15] = 0xc3;
  refused(notAscii, 7, /not ASCII/);
  // Batches shorter, and longer, than the entries name.
  refused(good.subarray(0, good.length - 1), 7, /are 3 bytes; its entries name 4/);
  const longer = new Uint8Array(good.length + 1);
  longer.set(good);
  refused(longer, 7, /are 5 bytes; its entries name 4/);
  // And the good one reads.
  const back = decodeRecordsFrame(good);
  assert.deepEqual(plain(back.partitions), [{
    topic: "orders",
    partition: 3,
    nextOffset: 10,
    highWatermark: 12,
    logStartOffset: 0,
    bytes: [1, 2, 3, 4],
  }]);
});
