import assert from "node:assert/strict";
import { readCheckpoint, writeCheckpoint } from "../../src/storage/checkpoint.ts";
import { offsetToFileStem, parseSegmentFileName } from "../../src/storage/file_names.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

Deno.test("writeCheckpoint() and readCheckpoint() round-trip; a missing file reads as null", async () => {
  await using dir = await tempDir();
  assert.equal(await readCheckpoint(dir.path, "cp"), null);
  await writeCheckpoint(dir.path, "cp", 42);
  await writeCheckpoint(dir.path, "cp", 9_007_199_254_740_991);
  assert.equal(await readCheckpoint(dir.path, "cp"), 9_007_199_254_740_991);
  assert.equal(await Deno.readTextFile(`${dir.path}/cp`), "0\n9007199254740991\n");
  await assert.rejects(Deno.stat(`${dir.path}/cp.tmp`), Deno.errors.NotFound);
});

Deno.test("readCheckpoint() rejects a damaged file with a RangeError naming it", async () => {
  await using dir = await tempDir();
  for (const text of ["", "7\n1\n", "0\n", "0\n-3\n", "0\nabc\n"]) {
    await Deno.writeTextFile(`${dir.path}/cp`, text);
    await assert.rejects(
      readCheckpoint(dir.path, "cp"),
      (e) => e instanceof RangeError && /"cp"/.test(e.message),
    );
  }
});

Deno.test("segment file names are the base offset in 20 digits", () => {
  assert.equal(offsetToFileStem(42), "00000000000000000042");
  assert.deepEqual(parseSegmentFileName("00000000000000000042.timeindex"), {
    baseOffset: 42,
    suffix: ".timeindex",
  });
  assert.equal(parseSegmentFileName("42.log"), null);
  assert.equal(parseSegmentFileName("00000000000000000042.log.tmp"), null);
});
