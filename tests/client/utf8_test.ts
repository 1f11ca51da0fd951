import assert from "node:assert/strict";
import fc from "fast-check";
import { utf8 } from "../../src/client/utf8.ts";

Deno.test("utf8() encodes exactly as TextEncoder, lone surrogates included", () => {
  const enc = new TextEncoder();
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), (s) => {
      assert.deepEqual(utf8(s), enc.encode(s));
    }),
    { numRuns: 1000 },
  );
  for (const s of ["", "a", "héllo", "€", "😀", "\ud800", "x\udc00y", "\ud83d"]) {
    assert.deepEqual(utf8(s), enc.encode(s), JSON.stringify(s));
  }
});
