/**
 * `rill produce TOPIC`: sends each stdin line as one record, batched through the client
 * producer. With `--key-separator SEP`, the text before the first SEP is the key.
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
                     [--compression none|gzip|snappy|lz4|zstd]

Sends each line of stdin as one record (without its line ending). Keyed lines go to the
partition of their key (Kafka's murmur2), keyless lines are spread over the partitions.

Options:
  --key-separator SEP  split each line at the first SEP into key and value
  --partition P        send every record to partition P
  --acks all|1|0       acknowledgement level (default all)
  --compression CODEC  compress batches with none (default), gzip, snappy, lz4 or zstd
  --broker URL         broker to talk to (default $RILL_BROKER or http://127.0.0.1:8092)
  -h, --help           show this help
`;

const OPTIONS = {
  "key-separator": { type: "string" },
  partition: { type: "string" },
  acks: { type: "string" },
  compression: { type: "string" },
} as const;

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
  const send = (messages: Message[]) => {
    const p = producer.send({ topic, messages }).catch((e) => {
      failure ??= e;
    });
    pending.add(p);
    p.finally(() => pending.delete(p));
  };
  let chunk: Message[] = [];
  let lineNo = 0;
  for await (const line of readLines(io.stdin())) {
    lineNo++;
    const m = lineToMessage(line, separator, lineNo);
    if (partition !== undefined) m.partition = partition;
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
  await producer.disconnect();
  if (failure !== undefined) throw failure;
  return 0;
}
