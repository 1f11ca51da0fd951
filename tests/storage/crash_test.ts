/**
 * A child process appends with fsync per group commit and is killed with SIGKILL after a
 * random number of acknowledged appends, round after round on the same log. After each
 * kill, every acknowledged append must be present with its content, and the log must be
 * consistent (contiguous offsets, valid CRCs, appends continue).
 */
import assert from "node:assert/strict";
import { PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { runUntilKilled } from "../_helpers/child_lines.ts";
import { batchOf, copyDir, readAll } from "./_fixtures.ts";

const CHILD = new URL("../_helpers/storage_crash_child.ts", import.meta.url).pathname;

interface Ack {
  baseOffset: number;
  lastOffset: number;
  tag: string;
}

/** Runs the child until it has acknowledged `killAfter` appends, then SIGKILLs it. */
async function runChild(dir: string, tag: string, killAfter: number): Promise<Ack[]> {
  const lines = await runUntilKilled(CHILD, [dir, tag], killAfter);
  return lines.map((line) => {
    const [base, last, t] = line.split(" ");
    return { baseOffset: Number(base), lastOffset: Number(last), tag: t };
  });
}

Deno.test("appends acknowledged before a SIGKILL survive it, round after round", async () => {
  await using dir = await tempDir();
  const logDir = `${dir.path}/log`;
  const acked: Ack[] = [];
  for (let round = 0; round < 4; round++) {
    const killAfter = 5 + Math.floor(Math.random() * 120);
    const acks = await runChild(logDir, `r${round}`, killAfter);
    assert.ok(acks.length >= killAfter);
    acked.push(...acks);
    // Check a copy, so that the next child also has to recover the crashed original.
    const copy = `${dir.path}/check-${round}`;
    await copyDir(logDir, copy);
    const log = await PartitionLog.open(copy);
    assert.equal(log.recovery.clean, false);
    const records = await readAll(log, 0, 64 * 1024); // checks every CRC
    records.forEach((r, i) => assert.equal(r.offset, i, "offsets are contiguous from 0"));
    assert.equal(records.length, log.logEndOffset);
    for (const a of acked) {
      assert.ok(a.lastOffset < log.logEndOffset, `acknowledged offset ${a.lastOffset} is present`);
      for (let o = a.baseOffset; o <= a.lastOffset; o++) {
        assert.ok(
          records[o].value.startsWith(`${a.tag}-${o - a.baseOffset}-`),
          `offset ${o} holds ${records[o].value.slice(0, 20)}, acknowledged as ${a.tag}`,
        );
      }
    }
    const next = await log.append(batchOf(["after the crash"]));
    assert.equal(next.baseOffset, records.length);
    await log.delete();
  }
});
