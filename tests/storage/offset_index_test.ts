import assert from "node:assert/strict";
import { OffsetIndex } from "../../src/storage/offset_index.ts";
import { TimeIndex } from "../../src/storage/time_index.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

Deno.test("OffsetIndex.lookup() returns the greatest entry at or below the target, or the base", () => {
  const index = new OffsetIndex(100, 2);
  assert.deepEqual(index.lookup(150), { offset: 100, position: 0 });
  index.append(110, 4000);
  index.append(130, 9000);
  index.append(170, 20000); // grows past the initial capacity
  assert.deepEqual(index.lookup(105), { offset: 100, position: 0 });
  assert.deepEqual(index.lookup(110), { offset: 110, position: 4000 });
  assert.deepEqual(index.lookup(169), { offset: 130, position: 9000 });
  assert.deepEqual(index.lookup(1e9), { offset: 170, position: 20000 });
  assert.throws(() => index.append(170, 30000), RangeError);
  assert.throws(() => index.append(180, 100), RangeError);
});

Deno.test("OffsetIndex persists incrementally, survives truncation and parses back", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/x.index`;
  const index = new OffsetIndex(0);
  for (let i = 1; i <= 10; i++) index.append(i * 10, i * 1000);
  index.persist(path);
  assert.equal((await Deno.stat(path)).size, 80);
  index.truncateToOffset(55); // keeps 10..50
  index.append(60, 5500);
  index.persist(path);
  const parsed = OffsetIndex.parse(0, await Deno.readFile(path), 1_000_000);
  assert.ok(parsed instanceof OffsetIndex);
  assert.equal(parsed.length, 6);
  assert.deepEqual(parsed.lastEntry(), { offset: 60, position: 5500 });
  index.truncateToPosition(3000);
  assert.deepEqual(index.lastEntry(), { offset: 20, position: 2000 });
});

Deno.test("OffsetIndex.parse() names what is wrong with a damaged file", () => {
  const good = new OffsetIndex(0);
  good.append(5, 100);
  good.append(9, 300);
  const bytes = good.encode();
  assert.match(OffsetIndex.parse(0, bytes.subarray(0, 12), 1000) as string, /not a multiple of 8/);
  assert.match(OffsetIndex.parse(0, bytes, 200) as string, /past the log/);
  const swapped = new Uint8Array([...bytes.subarray(8), ...bytes.subarray(0, 8)]);
  assert.match(OffsetIndex.parse(0, swapped, 1000) as string, /out of order/);
});

Deno.test("TimeIndex.lookupBefore() finds the last entry older than the target", () => {
  const index = new TimeIndex(1000);
  assert.equal(index.lookupBefore(5), null);
  index.maybeAppend(100, 1010);
  index.maybeAppend(100, 1020); // not newer: ignored
  index.maybeAppend(90, 1030); // older: ignored
  index.maybeAppend(200, 1040);
  assert.equal(index.length, 2);
  assert.equal(index.lookupBefore(100), null);
  assert.deepEqual(index.lookupBefore(101), { timestamp: 100, offset: 1010 });
  assert.deepEqual(index.lookupBefore(1e12), { timestamp: 200, offset: 1040 });
  index.truncateToOffset(1039);
  assert.deepEqual(index.lastEntry(), { timestamp: 100, offset: 1010 });
  const parsed = TimeIndex.parse(1000, index.encode());
  assert.ok(parsed instanceof TimeIndex);
  assert.deepEqual(parsed.lastEntry(), { timestamp: 100, offset: 1010 });
  assert.match(TimeIndex.parse(1000, new Uint8Array(13)) as string, /multiple of 12/);
});
