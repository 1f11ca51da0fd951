/**
 * `rill consume TOPIC`: prints records, one a line, from every partition of the topic (or
 * one, with `--partition`), until `--max-messages` records were printed, no record came for
 * `--timeout-ms`, or the process is interrupted.
 *
 * With `--group G` the command is a member of consumer group G: it joins, reads the
 * partitions the group assigns it (starting at the committed offsets; `--from-beginning`
 * decides where partitions without one start), commits what it printed, and leaves the
 * group when it exits (`--max-messages`, `--timeout-ms`, SIGINT).
 *
 * Text format prints the value (and the key before `--key-separator`, when given); JSON
 * format prints one object a line with topic, partition, offset, timestamp, key, value and
 * headers (as the contract says).
 *
 * @module
 */
import {
  type ConsumedMessage,
  type Consumer,
  Rill,
  type TopicPartitionOffset,
} from "../client/mod.ts";
import {
  type CliIo,
  connection,
  expectPositionals,
  intOption,
  parseCommand,
  UsageError,
} from "./common.ts";

/**
 * The help of `rill consume`.
 *
 * @example
 * ```ts
 * console.log(HELP);
 * ```
 */
export const HELP = `Usage:
  rill consume TOPIC [--from-beginning | --offset O | --from-timestamp T] [--partition P]
                     [--max-messages N] [--timeout-ms T] [--format text|json|TEMPLATE]
  rill consume TOPIC --group G [--from-beginning] [--max-messages N] [--timeout-ms T] …

Prints records one a line. Without --partition, reads every partition of the topic.
With --group, joins consumer group G: reads the partitions the group assigns, from the
group's committed offsets, commits what it printed, and leaves the group on exit.

Options:
  --group G            be a member of consumer group G
  --from-beginning     start at the earliest offset (default: only new records); with
                       --group: where partitions without a committed offset start
  --partition P        read only partition P
  --offset O           start at offset O (or "earliest"/"latest"), in every partition read
  --from-timestamp T   start at the first record at or after T: milliseconds since the
                       epoch or an ISO 8601 time (2026-12-05T08:00:00Z)
  --max-messages N     exit after N records
  --timeout-ms T       exit when no record arrived for T ms
  --format F           text: the value (default); json: one object per record; or a
                       template: %t topic, %p partition, %o offset, %k key, %v value,
                       %h headers (k=v,…), %d timestamp (ms), %T timestamp (ISO 8601),
                       %% a percent sign, \\n and \\t
  --key-separator SEP  text format: print the key, SEP, then the value
  --broker URL         broker to talk to (default $RILL_BROKER or http://127.0.0.1:8092)
  --api-key KEY        API key (default $RILL_API_KEY)
  --ca-file PEM        CA certificate for https:// brokers (default $RILL_CA_FILE)
  -h, --help           show this help

Keys, values and headers that are not UTF-8 text are printed as base64:… in text and
template formats (and as base64 with "valueEncoding" in JSON); control characters are
escaped (\\xNN), so binary data never reaches the terminal raw.
`;

const OPTIONS = {
  group: { type: "string" },
  "from-beginning": { type: "boolean" },
  partition: { type: "string" },
  offset: { type: "string" },
  "max-messages": { type: "string" },
  "timeout-ms": { type: "string" },
  format: { type: "string" },
  "key-separator": { type: "string" },
  "from-timestamp": { type: "string" },
} as const;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Bytes as safe terminal text: UTF-8 text with control characters escaped (`\xNN`; tab
 * kept), or `base64:…` when the bytes are not UTF-8.
 *
 * @param bytes the bytes, or null
 * @returns the text ("" for null)
 * @example
 * ```ts
 * safeText(new Uint8Array([0xff, 0x00])); // "base64:/wA="
 * ```
 */
export function safeText(bytes: Uint8Array | null): string {
  if (bytes === null) return "";
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return `base64:${btoa(bin)}`;
  }
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0a-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/**
 * Renders a `--format` template for one record.
 *
 * @param template the template (`%t %p %o %k %v %h %d %T %%`, `\n`, `\t`)
 * @param m the record
 * @returns the text, ending in a newline
 * @throws {UsageError} on an unknown `%` directive
 * @example
 * ```ts
 * formatTemplate("%p:%o %v", message); // "0:41 hello\n"
 * ```
 */
export function formatTemplate(template: string, m: ConsumedMessage): string {
  const out = template.replace(/%(.)|\\([nt])/g, (whole, d: string | undefined, esc) => {
    if (esc !== undefined) return esc === "n" ? "\n" : "\t";
    switch (d) {
      case "t":
        return m.topic;
      case "p":
        return String(m.partition);
      case "o":
        return String(m.offset);
      case "k":
        return safeText(m.key);
      case "v":
        return safeText(m.value);
      case "h":
        return m.headerList.map((h) =>
          `${safeText(new TextEncoder().encode(h.key))}=${safeText(h.value)}`
        ).join(",");
      case "d":
        return String(m.timestamp);
      case "T":
        return new Date(m.timestamp).toISOString();
      case "%":
        return "%";
      default:
        throw new UsageError(`--format has an unknown directive "${whole}"; see --help`);
    }
  });
  return out.endsWith("\n") ? out : out + "\n";
}

/**
 * Parses a `--from-timestamp` value: milliseconds since the epoch or an ISO 8601 time.
 *
 * @param raw the value
 * @param name the option, for the message
 * @returns milliseconds since the epoch
 * @throws {UsageError} when it is neither
 * @example
 * ```ts
 * parseTime("2026-12-05T08:00:00Z", "--from-timestamp"); // 1796457600000
 * ```
 */
export function parseTime(raw: string, name: string): number {
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    if (Number.isSafeInteger(n)) return n;
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(raw)) {
    const t = Date.parse(raw);
    if (!Number.isNaN(t)) return t;
  }
  throw new UsageError(
    `${name} must be milliseconds since the epoch or an ISO 8601 time (2026-12-05T08:00:00Z), got "${raw}"`,
  );
}

/** Text of UTF-8 bytes, or null when they are not UTF-8. */
function utf8(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

function base64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * A record as `--format json` prints it: the HTTP API's shape, keys, values and header values
 * that are not UTF-8 given in base64 with `keyEncoding`/`valueEncoding`/`headersEncoding`.
 *
 * @param m the record
 * @returns a JSON-able object
 */
export function messageJson(m: ConsumedMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    timestamp: m.timestamp,
  };
  for (const field of ["key", "value"] as const) {
    const bytes = m[field];
    const text = bytes === null ? null : utf8(bytes);
    if (bytes !== null && text === null) {
      out[field] = base64(bytes);
      out[`${field}Encoding`] = "base64";
    } else out[field] = text;
  }
  const headers: Record<string, string | null> = {};
  let binary = false;
  for (const { value } of m.headerList) {
    if (value !== null && utf8(value) === null) binary = true;
  }
  for (const { key, value } of m.headerList) {
    headers[key] = value === null ? null : binary ? base64(value) : utf8(value);
  }
  out.headers = headers;
  if (binary) out.headersEncoding = "base64";
  return out;
}

/**
 * Formats one record as `rill consume` prints it.
 *
 * @param m the record
 * @param format "text" or "json"
 * @param separator in text format, print the key and this before the value
 * @returns the line, with its newline
 * @example
 * ```ts
 * formatMessage(message, "json"); // '{"topic":"orders","partition":0,…}\n'
 * ```
 */
export function formatMessage(
  m: ConsumedMessage,
  format: "text" | "json",
  separator?: string,
): string {
  if (format === "json") return JSON.stringify(messageJson(m)) + "\n";
  const value = safeText(m.value);
  return separator === undefined ? value + "\n" : safeText(m.key) + separator + value + "\n";
}

/**
 * Runs `rill consume …`.
 *
 * @param args the arguments after `consume`
 * @param io where to write
 * @returns the exit status
 * @throws {UsageError} on a bad command line; {RillError} when the broker refuses
 * @example
 * ```ts
 * await run(["orders", "--from-beginning", "--max-messages", "10"], processIo());
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, OPTIONS);
  if (values.help) {
    await io.out(HELP);
    return 0;
  }
  const [topic] = expectPositionals(positionals, ["TOPIC"]);
  if (values.group !== undefined) {
    if (values.group === "") throw new UsageError("--group needs a group id");
    if (values.partition !== undefined || values.offset !== undefined) {
      throw new UsageError("--group cannot be combined with --partition or --offset");
    }
  }
  const format = values.format ?? "text";
  if (format !== "text" && format !== "json" && !format.includes("%")) {
    throw new UsageError(
      `--format must be text, json or a template with % directives (e.g. "%p %o %v"), got "${format}"`,
    );
  }
  const unknown = /%([^tpokvhdT%]|$)/.exec(format.replaceAll("%%", ""));
  if (format.includes("%") && unknown) {
    throw new UsageError(`--format has an unknown directive "${unknown[0]}"; see --help`);
  }
  const partition = intOption("--partition", values.partition, 0);
  const maxMessages = intOption("--max-messages", values["max-messages"], 1);
  const timeoutMs = intOption("--timeout-ms", values["timeout-ms"], 0);
  let offset: string | undefined = values.offset;
  const fromTime = values["from-timestamp"];
  const starts = [offset, fromTime, values["from-beginning"] ? true : undefined];
  if (starts.filter((x) => x !== undefined).length > 1) {
    throw new UsageError("--offset, --from-timestamp and --from-beginning cannot be combined");
  }
  if (values.group !== undefined && fromTime !== undefined) {
    throw new UsageError(
      "--from-timestamp cannot be combined with --group (move the group with rill groups reset-offsets --to-datetime)",
    );
  }
  if (offset !== undefined && offset !== "earliest" && offset !== "latest") {
    offset = String(intOption("--offset", offset, 0));
  }
  const timestamp = fromTime === undefined ? undefined : parseTime(fromTime, "--from-timestamp");
  const start = offset ?? (values["from-beginning"] ? "earliest" : "latest");
  const separator = values["key-separator"];

  const rill = new Rill({ ...connection(values), retry: { retries: 3 } });
  const maxWaitMs = timeoutMs === undefined ? 5000 : Math.max(1, Math.min(5000, timeoutMs));
  let consumer: Consumer;
  if (values.group !== undefined) {
    consumer = rill.consumer({ groupId: values.group, maxWaitMs });
    await consumer.subscribe({ topics: [topic], fromBeginning: values["from-beginning"] });
  } else {
    let partitions: number[];
    if (partition !== undefined) partitions = [partition];
    else {
      const d = await rill.admin().describeTopic(topic);
      partitions = d.partitions.map((p) => p.partition);
    }
    consumer = rill.consumer({ maxWaitMs });
    await consumer.assign(
      partitions.map((p): TopicPartitionOffset =>
        timestamp === undefined
          ? { topic, partition: p, offset: start }
          : { topic, partition: p, timestamp }
      ),
    );
  }

  let printed = 0;
  let lastAt = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stopOnIdle = () => {
    const idle = Date.now() - lastAt;
    if (idle >= timeoutMs!) consumer.stop();
    else timer = setTimeout(stopOnIdle, timeoutMs! - idle);
  };
  if (timeoutMs !== undefined) timer = setTimeout(stopOnIdle, timeoutMs);
  const interrupt = () => consumer.stop();
  addSignal(interrupt);
  try {
    // with --group, stop() commits what was printed (resolved) and leaves the group
    await consumer.run({
      // only what was printed counts as processed (what --group commits)
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        let out = "";
        let last = -1;
        for (const m of batch.messages) {
          if (maxMessages !== undefined && printed >= maxMessages) break;
          out += format === "text" || format === "json"
            ? formatMessage(m, format, separator)
            : formatTemplate(format, m);
          printed++;
          last = m.offset;
        }
        lastAt = Date.now();
        if (out !== "") await io.out(out);
        if (last >= 0) resolveOffset(last);
        if (maxMessages !== undefined && printed >= maxMessages) await consumer.stop();
      },
    });
    await consumer.finished();
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    removeSignal(interrupt);
  }
  return 0;
}

function addSignal(fn: () => void): void {
  try {
    Deno.addSignalListener("SIGINT", fn);
  } catch {
    // signals unsupported here (e.g. Windows SIGTERM): Ctrl-C ends the process anyway
  }
}

function removeSignal(fn: () => void): void {
  try {
    Deno.removeSignalListener("SIGINT", fn);
  } catch {
    // see addSignal
  }
}
