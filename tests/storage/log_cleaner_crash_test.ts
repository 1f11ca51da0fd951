/**
 * A child process appends keyed records to a compacted log and compacts it, and is killed
 * with SIGKILL at a random moment, round after round on the same log. After each kill, the
 * latest acknowledged record of every key must still be there, unchanged at its offset,
 * and every record read must be one that was appended there.
 */
import assert from "node:assert/strict";
import { PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { runUntilKilled } from "../_helpers/child_lines.ts";
import { copyDir } from "./_fixtures.ts";
import { keyedBatch, readKeyed } from "./_compaction_fixtures.ts";

const CHILD = new URL("../_helpers/compaction_crash_child.ts", import.meta.url).pathname;

interface Ack {
  offset: number;
  key: string;
  value: string;
}

/** Runs the child until it has acknowledged `killAfter` appends, then SIGKILLs it. */
async function runChild(dir: string, tag: string, killAfter: number): Promise<Ack[]> {
  const lines = await runUntilKilled(CHILD, [dir, tag], killAfter);
  return lines.map((line) => {
    const [offset, key, value] = line.split(" ");
    return { offset: Number(offset), key, value };
  });
}

Deno.test("a SIGKILL at any moment of compaction loses no key's latest acknowledged record", async () => {
  await using dir = await tempDir();
  const logDir = `${dir.path}/log`;
  const latest = new Map<string, Ack>();
  const appended = new Map<number, Ack>();
  for (let round = 0; round < 10; round++) {
    // Right after a 10th acknowledgement the child compacts: the kill lands in or near it.
    const killAfter = 10 * (3 + Math.floor(Math.random() * 30));
    for (const a of await runChild(logDir, `r${round}`, killAfter)) {
      latest.set(a.key, a);
      appended.set(a.offset, a);
    }
    // Check a copy, so that the next child also has to recover the crashed original.
    const copy = `${dir.path}/check-${round}`;
    await copyDir(logDir, copy);
    const log = await PartitionLog.open(copy, { compact: true, segmentBytes: 1024 });
    try {
      const got = await readKeyed(log);
      if (round > 0) assert.ok(got.length < appended.size, "compaction ran");
      const byOffset = new Map(got.map((r) => [r.offset, r]));
      for (const a of latest.values()) {
        const r = byOffset.get(a.offset);
        assert.deepEqual(r && { key: r.key, value: r.value }, { key: a.key, value: a.value });
      }
      for (const r of got) {
        const a = appended.get(r.offset);
        // Past the last acknowledgement a record may be written but not yet acknowledged.
        if (a) assert.deepEqual({ key: r.key, value: r.value }, { key: a.key, value: a.value });
      }
      const next = await log.append(keyedBatch([{ key: "x", value: "y" }]));
      assert.ok(next.baseOffset > Math.max(...appended.keys()));
      const left: string[] = [];
      for await (const e of Deno.readDir(copy)) {
        if (/\.(cleaned|swap|deleted)$/.test(e.name)) left.push(e.name);
      }
      assert.deepEqual(left, []);
    } finally {
      await log.close();
    }
    await Deno.remove(copy, { recursive: true });
  }
});
