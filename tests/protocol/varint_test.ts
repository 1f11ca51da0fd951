import assert from "node:assert/strict";
import fc from "fast-check";
import { readVarint, varintSize, writeVarint } from "../../src/protocol/varint.ts";

Deno.test("varint encodes Kafka's known zig-zag bytes", () => {
  const cases: Array<[number, number[]]> = [
    [0, [0x00]],
    [-1, [0x01]],
    [1, [0x02]],
    [-64, [0x7f]],
    [64, [0x80, 0x01]],
    [300, [0xd8, 0x04]],
    [2147483647, [0xfe, 0xff, 0xff, 0xff, 0x0f]],
    [-2147483648, [0xff, 0xff, 0xff, 0xff, 0x0f]],
  ];
  for (const [value, bytes] of cases) {
    const buf = new Uint8Array(10);
    const end = writeVarint(buf, 0, value);
    assert.deepEqual([...buf.subarray(0, end)], bytes, `encoding ${value}`);
    assert.equal(varintSize(value), bytes.length);
    assert.deepEqual(readVarint(buf, 0, end), { value, next: end });
  }
});

Deno.test("varint round-trips every safe integer", () => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 52) + 1, max: 2 ** 52 - 1 }), (value) => {
      const buf = new Uint8Array(10);
      const end = writeVarint(buf, 0, value);
      assert.equal(end, varintSize(value));
      assert.deepEqual(readVarint(buf, 0, end), { value, next: end });
    }),
  );
});

Deno.test("writeVarint() refuses values it cannot encode exactly", () => {
  assert.throws(() => writeVarint(new Uint8Array(10), 0, 2 ** 52), RangeError);
  assert.throws(() => writeVarint(new Uint8Array(10), 0, NaN), RangeError);
});

Deno.test("readVarint() refuses a varint cut short or longer than 10 bytes", () => {
  assert.throws(() => readVarint(new Uint8Array([0x80, 0x80]), 0, 2), RangeError);
  assert.throws(() => readVarint(new Uint8Array(11).fill(0x80), 0, 11), /longer than 10/);
});
