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
  rill consume TOPIC [--from-beginning] [--partition P [--offset O]]
                     [--max-messages N] [--timeout-ms T] [--format text|json]
  rill consume TOPIC --group G [--from-beginning] [--max-messages N] [--timeout-ms T] …

Prints records one a line. Without --partition, reads every partition of the topic.
With --group, joins consumer group G: reads the partitions the group assigns, from the
group's committed offsets, commits what it printed, and leaves the group on exit.

Options:
  --group G            be a member of consumer group G
  --from-beginning     start at the earliest offset (default: only new records); with
                       --group: where partitions without a committed offset start
  --partition P        read only partition P
  --offset O           with --partition: start at offset O (or "earliest"/"latest")
  --max-messages N     exit after N records
  --timeout-ms T       exit when no record arrived for T ms
  --format text|json   text: the value (default); json: one object per record
  --key-separator SEP  text format: print the key, SEP, then the value
  --broker URL         broker to talk to (default $RILL_BROKER or http://127.0.0.1:8092)
  -h, --help           show this help
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
} as const;

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
  if (format === "json") return JSON.stringify(m) + "\n";
  const value = m.valueString() ?? "";
  return separator === undefined ? value + "\n" : (m.keyString() ?? "") + separator + value + "\n";
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
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--format must be text or json, got "${format}"`);
  }
  const partition = intOption("--partition", values.partition, 0);
  const maxMessages = intOption("--max-messages", values["max-messages"], 1);
  const timeoutMs = intOption("--timeout-ms", values["timeout-ms"], 0);
  let offset: string | undefined = values.offset;
  if (offset !== undefined) {
    if (partition === undefined) throw new UsageError("--offset needs --partition");
    if (values["from-beginning"]) {
      throw new UsageError("--offset and --from-beginning cannot be combined");
    }
    if (offset !== "earliest" && offset !== "latest") {
      offset = String(intOption("--offset", offset, 0));
    }
  }
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
      partitions.map((p): TopicPartitionOffset => ({ topic, partition: p, offset: start })),
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
          out += formatMessage(m, format, separator);
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
