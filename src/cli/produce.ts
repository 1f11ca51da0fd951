/**
 * `rill produce TOPIC`: sends each line of stdin (or `--file`) as one record, batched
 * through the client producer. With `--key-separator SEP`, the text before the first SEP is
 * the key; with `--format json` each line is a record object. A count goes to stderr at the
 * end; `--verbose` prints each record's partition and offset on stdout.
 *
 * @module
 */
import { isCompressionType } from "../protocol/compression.ts";
import { type Message, Rill } from "../client/mod.ts";
import {
  type CliIo,
  connection,
  expectPositionals,
  intOption,
  parseCommand,
  UsageError,
} from "./common.ts";

/**
 * The help of `rill produce`.
 *
 * @example
 * ```ts
 * console.log(HELP);
 * ```
 */
export const HELP = `Usage:
  rill produce TOPIC [--key-separator SEP] [--partition P] [--acks all|1|0]
                     [--file PATH] [--header K=V]… [--format text|json] [--verbose]
                     [--compression none|gzip|snappy|lz4|zstd]

Sends each line of stdin (or of --file) as one record (without its line ending). Keyed
lines go to the partition of their key (Kafka's murmur2), keyless lines are spread over
the partitions. At the end, "Produced N records to TOPIC" goes to stderr.

Options:
  --key-separator SEP  split each line at the first SEP into key and value
  --partition P        send every record to partition P
  --acks all|1|0       acknowledgement level (default all)
  --file PATH          read the lines from PATH instead of stdin
  --header K=V         add header K with value V to every record (repeatable)
  --format text|json   text: each line is a value (default); json: each line is an object
                       {"key"?, "value", "headers"?: {"k": "v"}, "partition"?, "timestamp"?,
                       "keyEncoding"?/"valueEncoding"?: "base64"}
  --verbose            print "PARTITION OFFSET" of each record on stdout, in input order
  --compression CODEC  compress batches with none (default), gzip, snappy, lz4 or zstd
  --broker URL         broker to talk to (default $RILL_BROKER or http://127.0.0.1:8092)
  --api-key KEY        API key (default $RILL_API_KEY)
  --ca-file PEM        CA certificate for https:// brokers (default $RILL_CA_FILE)
  -h, --help           show this help
`;

const OPTIONS = {
  "key-separator": { type: "string" },
  partition: { type: "string" },
  acks: { type: "string" },
  file: { type: "string" },
  header: { type: "string", multiple: true },
  format: { type: "string" },
  verbose: { type: "boolean" },
  compression: { type: "string" },
} as const;

function fromBase64(text: string, what: string, lineNo: number): Uint8Array {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    throw new UsageError(`Line ${lineNo}: ${what} is not valid base64`);
  }
}

/**
 * Turns a JSON line into a message (`--format json`).
 *
 * @param line the line
 * @param lineNo the line number, for the message
 * @returns the message
 * @throws {UsageError} when the line is not a record object
 * @example
 * ```ts
 * jsonToMessage('{"key":"k","value":"v","headers":{"h":"1"}}', 1);
 * ```
 */
export function jsonToMessage(line: string, lineNo: number): Message {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    throw new UsageError(`Line ${lineNo} is not JSON (--format json takes one object a line)`);
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new UsageError(`Line ${lineNo} must be a JSON object with "value"`);
  }
  const r = o as Record<string, unknown>;
  const known = new Set([
    "key",
    "value",
    "headers",
    "partition",
    "timestamp",
    "keyEncoding",
    "valueEncoding",
  ]);
  for (const k of Object.keys(r)) {
    if (!known.has(k)) throw new UsageError(`Line ${lineNo} has an unknown field "${k}"`);
  }
  const bytes = (field: "key" | "value"): string | Uint8Array | null | undefined => {
    const v = r[field];
    if (v === undefined || v === null) return v;
    if (typeof v !== "string") {
      throw new UsageError(`Line ${lineNo}: "${field}" must be a string or null`);
    }
    const enc = r[`${field}Encoding`];
    if (enc === undefined) return v;
    if (enc !== "base64") {
      throw new UsageError(`Line ${lineNo}: "${field}Encoding" must be "base64"`);
    }
    return fromBase64(v, `"${field}"`, lineNo);
  };
  const value = bytes("value");
  if (value === undefined) throw new UsageError(`Line ${lineNo} has no "value" (null for none)`);
  const m: Message = { value };
  const key = bytes("key");
  if (key !== undefined) m.key = key;
  if (r.headers !== undefined) {
    if (typeof r.headers !== "object" || r.headers === null || Array.isArray(r.headers)) {
      throw new UsageError(`Line ${lineNo}: "headers" must be an object of strings`);
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers)) {
      if (typeof v !== "string") {
        throw new UsageError(`Line ${lineNo}: header "${k}" must be a string`);
      }
      headers[k] = v;
    }
    m.headers = headers;
  }
  for (const field of ["partition", "timestamp"] as const) {
    const v = r[field];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      throw new UsageError(`Line ${lineNo}: "${field}" must be a non-negative integer`);
    }
    m[field] = v as number;
  }
  return m;
}

/** Lines are sent in chunks of this many, several chunks in flight. */
const CHUNK_LINES = 2000;
const MAX_PENDING_SENDS = 8;

/**
 * Splits a byte stream into lines (without `\n` or a trailing `\r`); a last line without a
 * newline counts, an empty stream has none.
 *
 * @param stream the bytes
 * @returns the lines, as text
 * @example
 * ```ts
 * for await (const line of readLines(Deno.stdin.readable)) console.log(line);
 * ```
 */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    let start = 0;
    let nl = text.indexOf("\n");
    if (nl === -1) {
      rest += text;
      continue;
    }
    let line = rest + text.slice(0, nl);
    rest = "";
    for (;;) {
      yield line.endsWith("\r") ? line.slice(0, -1) : line;
      start = nl + 1;
      nl = text.indexOf("\n", start);
      if (nl === -1) break;
      line = text.slice(start, nl);
    }
    rest = text.slice(start);
  }
  if (rest !== "") yield rest.endsWith("\r") ? rest.slice(0, -1) : rest;
}

/**
 * Turns a line into a message.
 *
 * @param line the line
 * @param separator the key separator, if any
 * @param lineNo the line number, for the message
 * @returns the message
 * @throws {UsageError} if a separator is set and the line lacks it
 * @example
 * ```ts
 * lineToMessage("k1:hello", ":", 1); // { key: "k1", value: "hello" }
 * ```
 */
export function lineToMessage(
  line: string,
  separator: string | undefined,
  lineNo: number,
): Message {
  if (separator === undefined) return { value: line };
  const at = line.indexOf(separator);
  if (at === -1) {
    throw new UsageError(`Line ${lineNo} has no key separator "${separator}"`);
  }
  return { key: line.slice(0, at), value: line.slice(at + separator.length) };
}

/**
 * Runs `rill produce …`.
 *
 * @param args the arguments after `produce`
 * @param io where to read and write
 * @returns the exit status
 * @throws {UsageError} on a bad command line; {RillError} when the broker refuses a batch
 * @example
 * ```ts
 * await run(["orders", "--key-separator", ":"], processIo());
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, OPTIONS);
  if (values.help) {
    await io.out(HELP);
    return 0;
  }
  const [topic] = expectPositionals(positionals, ["TOPIC"]);
  const separator = values["key-separator"];
  if (separator === "") throw new UsageError("--key-separator must not be empty");
  const format = values.format ?? "text";
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--format must be text or json, got "${format}"`);
  }
  if (format === "json" && separator !== undefined) {
    throw new UsageError("--key-separator applies to --format text only");
  }
  const headers: Record<string, string> = {};
  for (const h of values.header ?? []) {
    const eq = h.indexOf("=");
    if (eq <= 0) throw new UsageError(`--header must be name=value, got "${h}"`);
    headers[h.slice(0, eq)] = h.slice(eq + 1);
  }
  const hasHeaders = Object.keys(headers).length > 0;
  let input: ReadableStream<Uint8Array>;
  if (values.file !== undefined) {
    try {
      input = (await Deno.open(values.file)).readable;
    } catch (e) {
      throw new UsageError(
        `Cannot read --file "${values.file}": ${e instanceof Error ? e.message.split("\n")[0] : e}`,
      );
    }
  } else input = io.stdin();
  const verbose = values.verbose ?? false;
  const partition = intOption("--partition", values.partition, 0);
  const acks = values.acks ?? "all";
  if (acks !== "all" && acks !== "1" && acks !== "0" && acks !== "-1") {
    throw new UsageError(`--acks must be all, 1 or 0, got "${acks}"`);
  }
  const compression = values.compression ?? "none";
  if (!isCompressionType(compression)) {
    throw new UsageError(
      `--compression must be none, gzip, snappy, lz4 or zstd, got "${compression}"`,
    );
  }
  const rill = new Rill({ ...connection(values) });
  const producer = rill.producer({
    acks: acks === "-1" ? "all" : acks as "all" | "1" | "0",
    compression,
  });
  const pending = new Set<Promise<unknown>>();
  let failure: unknown = undefined;
  let produced = 0;
  // --verbose prints in input order: each chunk's answer waits for the previous chunk's.
  let printed: Promise<void> = Promise.resolve();
  const send = (messages: Message[]) => {
    const sent = producer.send({ topic, messages });
    const p = sent.then(() => {
      produced += messages.length;
    }).catch((e) => {
      failure ??= e;
    });
    if (verbose) {
      printed = printed.then(() =>
        sent.then((meta) => io.out(meta.map((r) => `${r.partition} ${r.offset}\n`).join("")))
          .catch(() => {})
      );
    }
    pending.add(p);
    p.finally(() => pending.delete(p));
  };
  let chunk: Message[] = [];
  let lineNo = 0;
  for await (const line of readLines(input)) {
    lineNo++;
    if (format === "json" && line.trim() === "") continue;
    const m = format === "json"
      ? jsonToMessage(line, lineNo)
      : lineToMessage(line, separator, lineNo);
    if (partition !== undefined) m.partition = partition;
    if (hasHeaders) m.headers = { ...headers, ...m.headers as Record<string, string> };
    chunk.push(m);
    if (chunk.length >= CHUNK_LINES) {
      send(chunk);
      chunk = [];
      while (pending.size >= MAX_PENDING_SENDS) await Promise.race(pending);
    }
    if (failure !== undefined) throw failure;
  }
  if (chunk.length > 0) send(chunk);
  await Promise.all(pending);
  await printed;
  await producer.disconnect();
  if (failure !== undefined) throw failure;
  await io.err(`Produced ${produced} record${produced === 1 ? "" : "s"} to ${topic}\n`);
  return 0;
}
