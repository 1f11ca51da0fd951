import assert from "node:assert/strict";
import { RillError } from "../../src/protocol/errors.ts";
import { brokerOffset, toOffset } from "../../src/client/offsets.ts";

Deno.test("toOffset accepts safe integers as number, bigint or string", () => {
  assert.equal(toOffset(0), 0);
  assert.equal(toOffset(42n), 42);
  assert.equal(toOffset("9007199254740991"), Number.MAX_SAFE_INTEGER);
});

Deno.test("toOffset rejects offsets a JS number cannot hold exactly", () => {
  assert.throws(() => toOffset(2n ** 53n), /beyond 2\^53/);
  assert.throws(() => toOffset("9007199254740993"), /beyond 2\^53/);
  assert.throws(() => toOffset(2 ** 53), RangeError);
  assert.throws(() => toOffset(-1), RangeError);
  assert.throws(() => toOffset(1.5), RangeError);
  assert.throws(() => toOffset("12abc"), RangeError);
});

Deno.test("brokerOffset refuses an offset beyond 2^53 from a broker", () => {
  assert.equal(brokerOffset("17", "Rill-Next-Offset"), 17);
  assert.throws(
    () => brokerOffset(2 ** 60, "nextOffset"),
    (e: unknown) => e instanceof RillError && /nextOffset/.test(e.message),
  );
  assert.throws(() => brokerOffset(null, "offset"), RillError);
});
