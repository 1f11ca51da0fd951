/**
 * Helpers for storage tests: batches whose record values name their content, and reading a
 * whole log back as records.
 *
 * @module
 */
import { decodeBatch, encodeBatch, splitBatches } from "../../src/protocol/record_batch.ts";
import type { PartitionLog } from "../../src/storage/mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A record read back: its offset, value (as text) and timestamp. */
export interface SimpleRecord {
  offset: number;
  value: string;
  timestamp: number;
}

/**
 * A batch of records with the given values (UTF-8) and timestamps.
 *
 * @param values one value per record
 * @param timestamp the timestamp of every record, or one per record
 * @returns the encoded batch (baseOffset 0)
 */
export function batchOf(
  values: string[],
  timestamp: number | number[] = 1_700_000_000_000,
): Uint8Array {
  return encodeBatch(
    values.map((v, i) => ({
      key: encoder.encode(`k-${v}`),
      value: encoder.encode(v),
      timestamp: Array.isArray(timestamp) ? timestamp[i] : timestamp,
    })),
  );
}

/**
 * Decodes concatenated batches (checking each CRC) into records.
 *
 * @param bytes whole batches
 * @returns their records in order
 */
export function recordsOf(bytes: Uint8Array): SimpleRecord[] {
  const out: SimpleRecord[] = [];
  const batches = splitBatches(bytes);
  let consumed = 0;
  for (const b of batches) {
    consumed += b.length;
    for (const r of decodeBatch(b, true).records) {
      out.push({ offset: r.offset, value: decoder.decode(r.value!), timestamp: r.timestamp });
    }
  }
  if (consumed !== bytes.length) {
    throw new Error(`${bytes.length - consumed} stray bytes after the batches`);
  }
  return out;
}

/**
 * Reads every record from `from` to the log end, following nextOffset across segments.
 *
 * @param log the log
 * @param from the first offset (default logStartOffset)
 * @param maxBytes bytes per read
 * @returns the records with offset ≥ from
 */
export async function readAll(
  log: PartitionLog,
  from = log.logStartOffset,
  maxBytes = 4096,
): Promise<SimpleRecord[]> {
  const out: SimpleRecord[] = [];
  let offset = from;
  for (let guard = 0; offset < log.logEndOffset && guard < 1_000_000; guard++) {
    const r = await log.read(offset, maxBytes);
    if (r.nextOffset <= offset) throw new Error(`read(${offset}) made no progress`);
    for (const rec of recordsOf(r.bytes)) if (rec.offset >= offset) out.push(rec);
    offset = r.nextOffset;
  }
  return out;
}

/**
 * Appends `count` batches of 1..maxRecords records valued `v<offset-to-be>`; returns the
 * expected records.
 *
 * @param log the log
 * @param count how many batches
 * @param maxRecords records per batch vary from 1 to this
 * @param timestamp a function giving each batch's timestamp
 * @returns every record appended, with its expected offset
 */
export async function appendNumbered(
  log: PartitionLog,
  count: number,
  maxRecords = 5,
  timestamp: (i: number) => number = () => 1_700_000_000_000,
): Promise<SimpleRecord[]> {
  const out: SimpleRecord[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + (i % maxRecords);
    const first = log.logEndOffset;
    const values = Array.from({ length: n }, (_, j) => `v${first + j}`);
    const ts = timestamp(i);
    const r = await log.append(batchOf(values, ts));
    if (r.baseOffset !== first) throw new Error(`append got ${r.baseOffset}, expected ${first}`);
    values.forEach((value, j) => out.push({ offset: first + j, value, timestamp: ts }));
  }
  return out;
}

/**
 * The segment file names of a log directory, sorted.
 *
 * @param dir the log directory
 * @param suffix ".log", ".index" or ".timeindex"
 * @returns the names
 */
export async function segmentFiles(dir: string, suffix = ".log"): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(suffix)) names.push(e.name);
  return names.sort();
}

/**
 * Copies the files of a log directory (flat) to `to`, as a crash would leave them.
 *
 * @param from the log directory
 * @param to where the copy goes (created)
 */
export async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}
