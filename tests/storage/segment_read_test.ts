/**
 * A fetch reads exactly the whole batches it returns. Batches of 64 KiB and more are found
 * by their headers before they are read; smaller ones are read in bulk. Either way the
 * answer follows the same rules, checked here against the `.log` file itself: the batch
 * holding the offset whole, then the next ones while they fit in maxBytes, none at or past
 * maxOffset.
 */
import assert from "node:assert/strict";
import { encodeBatch, readBatchHeader, splitBatches } from "../../src/protocol/record_batch.ts";
import { PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

/** A batch of `count` records of `size` bytes each. */
function batch(count: number, size: number, seed: number): Uint8Array {
  const value = Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff);
  return encodeBatch(Array.from({ length: count }, () => ({ key: null, value })));
}

/** What a read must answer, computed from the stored batches. */
function expected(
  stored: { bytes: Uint8Array; base: number; last: number }[],
  offset: number,
  maxBytes: number,
  maxOffset: number,
): { bytes: Uint8Array; nextOffset: number } {
  let i = stored.findIndex((b) => b.last >= offset);
  const parts: Uint8Array[] = [];
  let size = 0;
  let next = offset;
  for (; i >= 0 && i < stored.length; i++) {
    const b = stored[i];
    if (b.last >= maxOffset) break;
    if (parts.length > 0 && size + b.bytes.length > maxBytes) break;
    parts.push(b.bytes);
    size += b.bytes.length;
    next = b.last + 1;
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return { bytes, nextOffset: next };
}

Deno.test("read() returns exactly the whole batches that fit, large batches and small mixed", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  // Large batches (found by their headers), small ones (read in bulk) between them.
  const shapes: [number, number][] = [
    [70, 1024],
    [3, 100],
    [150, 1000],
    [90, 1024],
    [1, 10],
    [2, 50],
    [200, 700],
    [65, 1024],
    [120, 1024],
  ];
  for (const [i, [count, size]] of shapes.entries()) await log.append(batch(count, size, i));
  await log.flush();
  const name = [...Deno.readDirSync(dir.path)].find((e) => e.name.endsWith(".log"))!.name;
  const stored = splitBatches(await Deno.readFile(`${dir.path}/${name}`)).map((bytes) => {
    const h = readBatchHeader(bytes);
    return { bytes, base: h.baseOffset, last: h.baseOffset + h.lastOffsetDelta };
  });
  assert.equal(stored.length, shapes.length);
  const end = log.logEndOffset;
  const sizes = [1, 1000, 70_000, 72_000, 150_000, 250_000, 400_000, 1 << 20, 1 << 30];
  for (const b of stored) {
    for (const offset of [b.base, b.base + Math.floor((b.last - b.base) / 2), b.last]) {
      for (const maxBytes of sizes) {
        for (const maxOffset of [end, b.last + 1, b.last, stored[stored.length - 2].last + 1]) {
          const got = await log.read(offset, maxBytes, { maxOffset });
          const want = offset >= Math.min(maxOffset, end)
            ? { bytes: new Uint8Array(0), nextOffset: offset }
            : expected(stored, offset, maxBytes, maxOffset);
          const what = `offset ${offset}, maxBytes ${maxBytes}, maxOffset ${maxOffset}`;
          assert.equal(got.nextOffset, want.nextOffset, what);
          assert.equal(got.bytes.length, want.bytes.length, what);
          assert.deepEqual(got.bytes, want.bytes, what);
        }
      }
    }
  }
  await log.close();
});
