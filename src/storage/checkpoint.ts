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
 * Written as `<name>.tmp`, fsynced, then renamed over `<name>`, so a reader sees either the
 * old or the new value, never half of one. A missing file reads as null; a damaged one
 * throws (the caller decides what a damaged checkpoint means).
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
  const path = joinPath(dir, name);
  const tmp = path + TMP_SUFFIX;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    const bytes = encoder.encode(`${VERSION}\n${offset}\n`);
    let n = 0;
    while (n < bytes.length) n += await file.write(bytes.subarray(n));
    await file.syncData();
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
}
