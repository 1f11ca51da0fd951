/**
 * Checkpoint files: one offset stored durably, replaced atomically.
 *
 * Format (text, as Kafka's checkpoint files):
 *
 * ```
 * 0            <- version
 * 12345        <- the offset
 * ```
 *
 * Written as `<name>.tmp`, fsynced, then renamed over `<name>`, and the directory fsynced
 * (so that the rename itself survives a power loss), so a reader sees either the old or the
 * new value, never half of one. A missing file reads as null; a damaged one throws (the
 * caller decides what a damaged checkpoint means). {@linkcode writeFileAtomic} does the
 * same for any file (the leader-epoch checkpoint, producer state snapshots).
 *
 * Directory fsync: Deno opens a directory read-only and `fsync`s it (`FsFile.sync`), which
 * on Linux makes the directory's entries (created, renamed and removed names) durable.
 *
 * @module
 */
import { joinPath, TMP_SUFFIX } from "./file_names.ts";

const VERSION = 0;
const encoder = new TextEncoder();

/**
 * Reads an offset checkpoint.
 *
 * @param dir the log directory
 * @param name the checkpoint file name
 * @returns the offset, or null if the file does not exist
 * @throws {RangeError} if the file exists but does not hold a valid checkpoint
 * @example
 * ```ts
 * await writeCheckpoint(dir, RECOVERY_POINT_CHECKPOINT, 42);
 * await readCheckpoint(dir, RECOVERY_POINT_CHECKPOINT); // 42
 * ```
 */
export async function readCheckpoint(dir: string, name: string): Promise<number | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(joinPath(dir, name));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const lines = text.split("\n");
  if (lines.length < 2 || lines[0].trim() !== String(VERSION)) {
    throw new RangeError(`Checkpoint "${name}" has an unknown version line "${lines[0]}"`);
  }
  const value = Number(lines[1].trim());
  if (lines[1].trim() === "" || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Checkpoint "${name}" holds "${lines[1]}", not an offset`);
  }
  return value;
}

/**
 * Writes an offset checkpoint atomically and durably (tmp file, fsync, rename).
 *
 * @param dir the log directory
 * @param name the checkpoint file name
 * @param offset the offset to store
 */
export async function writeCheckpoint(dir: string, name: string, offset: number): Promise<void> {
  await writeFileAtomic(dir, name, encoder.encode(`${VERSION}\n${offset}\n`));
}

/**
 * Replaces `dir/name` with `bytes` atomically and durably: writes `<name>.tmp`, fsyncs it,
 * renames it over `name` and fsyncs the directory.
 *
 * @param dir the directory
 * @param name the file name
 * @param bytes the whole new content
 * @example
 * ```ts
 * await writeFileAtomic(dir, "leader-epoch-checkpoint", new TextEncoder().encode("0\n0\n"));
 * ```
 */
export async function writeFileAtomic(dir: string, name: string, bytes: Uint8Array): Promise<void> {
  const path = joinPath(dir, name);
  const tmp = path + TMP_SUFFIX;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    let n = 0;
    while (n < bytes.length) n += await file.write(bytes.subarray(n));
    await file.syncData();
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
  await syncDir(dir);
}

/**
 * Fsyncs a directory, so that the names created, renamed or removed in it are durable.
 *
 * @param dir the directory
 * @returns once the directory's entries are on disk
 */
export async function syncDir(dir: string): Promise<void> {
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

/**
 * {@linkcode syncDir}, synchronously (used where a segment's files are created).
 *
 * @param dir the directory
 */
export function syncDirSync(dir: string): void {
  const handle = Deno.openSync(dir, { read: true });
  try {
    handle.syncSync();
  } finally {
    handle.close();
  }
}
