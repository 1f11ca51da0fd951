/**
 * The binary produce frames (src/protocol/ws_produce_frames.ts): exactly the bytes of the
 * layout documented in docs/http-api.md for any field values, and back.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeProducedFrame,
  decodeProduceFrame,
  encodeProducedFrame,
  encodeProduceFrame,
  ProduceFrameError,
  topicBytesOf,
} from "../../src/protocol/ws_produce_frames.ts";

const topicArb = fc.stringMatching(/^[a-zA-Z0-9._-]{1,249}$/);

Deno.test("ws produce frames: a request is the documented bytes, and decodes back", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      topicArb,
      fc.integer({ min: 0, max: 0x7fffffff }),
      fc.constantFrom(-1 as const, 0 as const, 1 as const),
      fc.uint8Array({ maxLength: 300 }),
      (id, topic, partition, acks, batch) => {
        const bytes = encodeProduceFrame(id, topicBytesOf(topic)!, partition, acks, batch);
        const ref = new Uint8Array(18 + topic.length + batch.length);
        const v = new DataView(ref.buffer);
        v.setUint32(0, 0xfffffffd);
        v.setBigUint64(4, BigInt(id));
        v.setUint32(12, partition);
        v.setInt8(16, acks);
        v.setUint8(17, topic.length);
        ref.set(new TextEncoder().encode(topic), 18);
        ref.set(batch, 18 + topic.length);
        assert.deepEqual(bytes, ref);
        const back = decodeProduceFrame(bytes);
        assert.deepEqual(
          { ...back, payload: back.payload.slice() },
          { id, topic, partition, acks, payload: batch },
        );
      },
    ),
    { numRuns: 200 },
  );
  // Names a frame cannot carry: sent as JSON instead.
  assert.equal(topicBytesOf(""), null);
  assert.equal(topicBytesOf("é"), null);
  assert.equal(topicBytesOf("x".repeat(250)), null);
  assert.throws(
    () => decodeProduceFrame(new Uint8Array([0xff, 0xff, 0xff, 0xfd, 0, 0, 0, 0, 0, 0, 0, 7])),
    (e: unknown) => e instanceof ProduceFrameError && e.id === 7 && /18-byte head/.test(e.message),
  );
});

Deno.test("ws produce frames: a produced answer is the documented bytes, and decodes back", () => {
  const offset = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.option(
        fc.record({
          partition: fc.integer({ min: 0, max: 0x7fffffff }),
          baseOffset: offset,
          lastOffset: offset,
          recordCount: fc.integer({ min: 0, max: 0xffffffff }),
          logAppendTime: fc.oneof(fc.constant(-1), offset),
        }),
        { nil: null },
      ),
      (id, r) => {
        const bytes = encodeProducedFrame(id, r);
        const ref = new Uint8Array(r === null ? 12 : 44);
        const v = new DataView(ref.buffer);
        v.setUint32(0, 0xfffffffc);
        v.setBigUint64(4, BigInt(id));
        if (r !== null) {
          v.setUint32(12, r.partition);
          v.setBigInt64(16, BigInt(r.baseOffset));
          v.setBigInt64(24, BigInt(r.lastOffset));
          v.setUint32(32, r.recordCount);
          v.setBigInt64(36, BigInt(r.logAppendTime));
        }
        assert.deepEqual(bytes, ref);
        assert.deepEqual(decodeProducedFrame(bytes), { id, offsets: r === null ? null : { ...r } });
      },
    ),
    { numRuns: 200 },
  );
});
