/**
 * The WebSocket frame codec (src/protocol/ws_frames.ts): exactly the bytes of the documented
 * layout (u32 header length, UTF-8 JSON header, payload) for any header, ASCII or not, and
 * back; malformed frames are refused.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeFrame,
  encodeFrame,
  FrameParts,
  WS_PART_LAST,
  WS_PART_MORE,
} from "../../src/protocol/ws_frames.ts";
import { encodeRecordsFrame } from "../../src/protocol/ws_records_frames.ts";

function reference(header: Record<string, unknown>, payload: Uint8Array[]): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const size = 4 + json.length + payload.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, json.length);
  out.set(json, 4);
  let pos = 4 + json.length;
  for (const p of payload) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

Deno.test("ws frames: any header and payload encode to the documented bytes and decode back", () => {
  fc.assert(
    fc.property(
      fc.string({ unit: "binary", maxLength: 700 }),
      fc.string({ maxLength: 20 }),
      fc.integer(),
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 3 }),
      (text, op, n, payload) => {
        const header = { op, id: n, text };
        const bytes = encodeFrame(header, payload);
        assert.deepEqual(bytes, reference(header, payload));
        const back = decodeFrame(bytes);
        // JSON turns lone surrogates into U+FFFD through UTF-8, as TextEncoder does.
        assert.deepEqual(
          back.header,
          JSON.parse(
            new TextDecoder().decode(
              bytes.subarray(4, 4 + (bytes[0] << 24 | bytes[1] << 16 | bytes[2] << 8 | bytes[3])),
            ),
          ),
        );
        assert.deepEqual(back.payload, reference({}, payload).subarray(6));
      },
    ),
    { numRuns: 200 },
  );
  const { header, payload } = decodeFrame(encodeFrame({ op: "produce", topic: "é€😀" }, [
    new Uint8Array([1, 2]),
  ]));
  assert.deepEqual(header, { op: "produce", topic: "é€😀" });
  assert.deepEqual(payload, new Uint8Array([1, 2]));
});

Deno.test("ws frames: malformed frames are refused with a TypeError", () => {
  const frame = (header: Uint8Array, length = header.length) => {
    const out = new Uint8Array(4 + header.length);
    new DataView(out.buffer).setUint32(0, length);
    out.set(header, 4);
    return out;
  };
  const enc = new TextEncoder();
  for (
    const bad of [
      new Uint8Array(3),
      frame(enc.encode('{"op":"x"}'), 99),
      frame(new Uint8Array([0x7b, 0xff, 0x7d])), // not UTF-8
      frame(enc.encode('{"op":"x"')), // not JSON
      frame(enc.encode("[1]")),
      frame(enc.encode('{"id":1}')), // no op
      frame(enc.encode(`{"op":"x","pad":"${"é".repeat(600)}"`)), // long, not JSON
    ]
  ) assert.throws(() => decodeFrame(bad), TypeError);
});

/** A frame cut into messages of the given sizes, each behind its part marker. */
function cut(frame: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  sizes.forEach((n, i) => {
    const m = new Uint8Array(4 + n);
    new DataView(m.buffer).setUint32(0, i === sizes.length - 1 ? WS_PART_LAST : WS_PART_MORE);
    m.set(frame.subarray(pos, pos + n), 4);
    out.push(m);
    pos += n;
  });
  return out;
}

Deno.test("ws frames: parts of any sizes join into the frame, which keeps no part's buffer", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 9000 }), { minLength: 1, maxLength: 6 }),
      (sizes) => {
        const total = sizes.reduce((a, b) => a + b, 0);
        const frame = new Uint8Array(total).map((_, i) => (i * 7 + 3) & 0xff);
        const joiner = new FrameParts();
        const messages = cut(frame, sizes);
        let joined: Uint8Array | null = null;
        messages.forEach((m, i) => {
          joined = joiner.take(m);
          // The link reuses its read buffer for the next message.
          m.fill(0xee);
          if (i < messages.length - 1) assert.equal(joined, null);
        });
        assert.deepEqual(joined, frame);
        // The next frame starts afresh; a message that is not a part is returned as it is.
        const whole = encodeFrame({ op: "records" });
        assert.equal(joiner.take(whole), whole);
        const again = cut(frame, [total]);
        assert.deepEqual(joiner.take(again[0]), frame);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("ws frames: a binary records push in parts joins into a buffer of its length, whatever the cut", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 5000 }), { minLength: 1, maxLength: 4 }),
      fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 6 }),
      (batches, cuts) => {
        const frame = encodeRecordsFrame(
          3,
          batches.map((bytes, partition) => ({
            topic: "t",
            partition,
            nextOffset: 1,
            highWatermark: 1,
            logStartOffset: 0,
            bytes,
            error: null,
          })),
        )!;
        // Cut into parts: the first at least its entries (as the broker's 64 KiB parts are).
        const first = Math.max(14 + 34 * batches.length, cuts[0]);
        const sizes = [Math.min(first, frame.length)];
        for (let pos = sizes[0], i = 1; pos < frame.length; i++) {
          const n = Math.min(cuts[i % cuts.length], frame.length - pos);
          sizes.push(n);
          pos += n;
        }
        if (sizes.length < 2) sizes.push(0);
        const joiner = new FrameParts();
        let joined: Uint8Array | null = null;
        for (const m of cut(frame, sizes)) joined = joiner.take(m);
        assert.deepEqual(joined, frame);
        assert.equal(joined!.buffer.byteLength, frame.length, "allocated once, to its length");
      },
    ),
    { numRuns: 200 },
  );
});
