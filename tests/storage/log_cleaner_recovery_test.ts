/**
 * What an interrupted compaction leaves on disk, state by state (Kafka's `.cleaned`,
 * `.swap` and `.deleted` files), and how opening the log finishes or forgets it: never a
 * lost record, never a leftover file.
 */
import assert from "node:assert/strict";
import { CLEAN_SHUTDOWN_MARKER, PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { copyDir } from "./_fixtures.ts";
import { keyedBatch, type KeyedRecord, readKeyed } from "./_compaction_fixtures.ts";

const CONFIG = { compact: true, segmentBytes: 100_000, indexIntervalBytes: 64 };
const stem = (base: number) => String(base).padStart(20, "0");

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Two copies of one log: `orig` (12 small closed segments and an active one, closed cleanly)
 * and `cleaned` (the same after one compaction, which merged the 12 into segment 0).
 */
async function fixture(root: string): Promise<{
  orig: string;
  cleaned: string;
  origRecords: KeyedRecord[];
  cleanedRecords: KeyedRecord[];
  replaced: number[];
}> {
  const orig = `${root}/orig`;
  const log = await PartitionLog.open(orig, CONFIG);
  for (let i = 0; i < 60; i++) {
    await log.append(keyedBatch([{ key: `k${i % 4}`, value: `v${i}` }]));
    if (i % 5 === 4) await log.roll();
  }
  await log.append(keyedBatch([{ key: "k0", value: "active" }]));
  const origRecords = await readKeyed(log);
  await log.close();
  const cleaned = `${root}/cleaned`;
  await copyDir(orig, cleaned);
  const c = await PartitionLog.open(cleaned, CONFIG);
  const result = await c.clean();
  assert.equal(result?.segmentsCleaned, 12);
  const cleanedRecords = await readKeyed(c);
  await c.close();
  const replaced = (await names(orig)).filter((n) => n.endsWith(".log")).map((n) =>
    Number(n.slice(0, 20))
  ).filter((b) => b < 60);
  assert.equal(replaced.length, 12);
  assert.deepEqual(
    (await names(cleaned)).filter((n) => n.endsWith(".log")),
    [`${stem(0)}.log`, `${stem(60)}.log`],
  );
  return { orig, cleaned, origRecords, cleanedRecords, replaced };
}

/** Opens `dir`, checks its records and that no leftover file remains, appends once. */
async function expectLog(dir: string, expected: KeyedRecord[], what: string): Promise<void> {
  const log = await PartitionLog.open(dir, CONFIG);
  try {
    assert.deepEqual(await readKeyed(log), expected, what);
    const left = (await names(dir)).filter((n) => /\.(cleaned|swap|deleted)$/.test(n));
    assert.deepEqual(left, [], `${what}: no leftovers`);
    assert.equal((await log.append(keyedBatch([{ key: "z", value: "1" }]))).baseOffset, 61);
    await log.clean(); // a later pass works on the recovered log
  } finally {
    await log.close();
  }
}

const SUFFIXES = [".log", ".index", ".timeindex"];

Deno.test("crash while writing the copy: the .cleaned files are removed, the log is as before", async () => {
  await using dir = await tempDir();
  const f = await fixture(dir.path);
  const d = `${dir.path}/state`;
  await copyDir(f.orig, d);
  for (const s of SUFFIXES) {
    await Deno.copyFile(`${f.cleaned}/${stem(0)}${s}`, `${d}/${stem(0)}${s}.cleaned`);
  }
  // A torn copy too: half of it.
  const half = await Deno.readFile(`${d}/${stem(0)}.log.cleaned`);
  await Deno.writeFile(`${d}/${stem(0)}.log.cleaned`, half.subarray(0, half.length >> 1));
  await Deno.remove(`${d}/${CLEAN_SHUTDOWN_MARKER}`);
  await expectLog(d, f.origRecords, ".cleaned");
});

Deno.test("crash after the index files became .swap but not the .log: the copy is forgotten", async () => {
  await using dir = await tempDir();
  const f = await fixture(dir.path);
  const d = `${dir.path}/state`;
  await copyDir(f.orig, d);
  await Deno.copyFile(`${f.cleaned}/${stem(0)}.index`, `${d}/${stem(0)}.index.swap`);
  await Deno.copyFile(`${f.cleaned}/${stem(0)}.timeindex`, `${d}/${stem(0)}.timeindex.swap`);
  await Deno.copyFile(`${f.cleaned}/${stem(0)}.log`, `${d}/${stem(0)}.log.cleaned`);
  await expectLog(d, f.origRecords, "index .swap only");
});

for (const renamed of [0, 5, 12]) {
  Deno.test(`crash after the .swap files, with ${renamed} of 12 old segments renamed .deleted: the swap is finished`, async () => {
    await using dir = await tempDir();
    const f = await fixture(dir.path);
    const d = `${dir.path}/state`;
    await copyDir(f.orig, d);
    for (const s of SUFFIXES) {
      await Deno.copyFile(`${f.cleaned}/${stem(0)}${s}`, `${d}/${stem(0)}${s}.swap`);
    }
    for (const base of f.replaced.slice(0, renamed)) {
      for (const s of SUFFIXES) {
        await Deno.rename(`${d}/${stem(base)}${s}`, `${d}/${stem(base)}${s}.deleted`);
      }
    }
    if (renamed === 5) await Deno.remove(`${d}/${CLEAN_SHUTDOWN_MARKER}`);
    await expectLog(d, f.cleanedRecords, `${renamed} renamed`);
    const below60 = (await names(d)).filter((n) => n.endsWith(".log") && n < `${stem(60)}.log`);
    assert.deepEqual(below60, [`${stem(0)}.log`], "the copy replaced the 12 old segments");
  });
}

Deno.test("crash after the .log swap got its final name: index .swap files and .deleted files go", async () => {
  await using dir = await tempDir();
  const f = await fixture(dir.path);
  const d = `${dir.path}/state`;
  await copyDir(f.cleaned, d);
  await Deno.rename(`${d}/${stem(0)}.index`, `${d}/${stem(0)}.index.swap`);
  await Deno.remove(`${d}/${stem(0)}.timeindex`);
  for (const base of f.replaced) {
    for (const s of SUFFIXES) {
      await Deno.copyFile(`${f.orig}/${stem(base)}${s}`, `${d}/${stem(base)}${s}.deleted`);
    }
  }
  await Deno.remove(`${d}/${CLEAN_SHUTDOWN_MARKER}`);
  await expectLog(d, f.cleanedRecords, "final .log, leftovers");
  assert.ok(await exists(`${d}/${stem(0)}.index`), "the missing index was rebuilt");
});
