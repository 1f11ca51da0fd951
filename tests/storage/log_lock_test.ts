/**
 * Issue 14, D7: `PartitionLog.close()` releases the log's lock before it resolves, even when
 * another reference to the lock file's open file description exists — as it does for a moment
 * whenever any thread of the process spawns a child (the child holds a copy of every
 * descriptor until it execs). Closing the descriptor alone then left the `flock` held, and a
 * reopen right after `close()` failed with "it is already open" (1 CI run in 4). The test
 * makes such a copy with `dup(2)`.
 */
import assert from "node:assert/strict";
import { PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

/** The descriptor number of this process's open `path`, from /proc/self/fd. */
function fdOf(path: string): number {
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`) === path) return Number(entry.name);
    } catch {
      // closed meanwhile
    }
  }
  throw new Error(`${path} is not open`);
}

Deno.test({
  name: "PartitionLog.close() releases the lock while another reference to its descriptor is open",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using dir = await tempDir();
    const libc = Deno.dlopen("libc.so.6", {
      dup: { parameters: ["i32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
    });
    try {
      const log = await PartitionLog.open(dir.path);
      const copy = libc.symbols.dup(fdOf(await Deno.realPath(`${dir.path}/.lock`)));
      assert.ok(copy >= 0);
      try {
        await log.close();
        const reopened = await PartitionLog.open(dir.path);
        await reopened.close();
      } finally {
        libc.symbols.close(copy);
      }
    } finally {
      libc.close();
    }
  },
});
