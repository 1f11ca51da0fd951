/**
 * `rill topics create|list|describe|alter|delete`: topic administration through the
 * client's Admin.
 *
 * @module
 */
import { Rill } from "../client/mod.ts";
import type { TopicDescription } from "../client/mod.ts";
import {
  type CliIo,
  configOptions,
  connection,
  expectPositionals,
  intOption,
  parseCommand,
  UsageError,
} from "./common.ts";

/**
 * The help of `rill topics`.
 *
 * @example
 * ```ts
 * console.log(HELP);
 * ```
 */
export const HELP = `Usage:
  rill topics create NAME [--partitions N] [--replication-factor R] [--config k=v]…
  rill topics list
  rill topics describe NAME
  rill topics alter NAME [--partitions N] [--config k=v]…
  rill topics delete NAME
  rill topics reassign NAME --replicas P=ID,ID… [--replicas P=ID,ID…]…
                 move partition P to those brokers (preferred leader first)

Options:
  --format text|json  list and describe: text (default) or JSON
  --broker URL   broker to talk to (default $RILL_BROKER or http://127.0.0.1:8092)
  --api-key KEY  API key (default $RILL_API_KEY)
  --ca-file PEM  CA certificate for https:// brokers (default $RILL_CA_FILE)
  -h, --help     show this help
`;

const OPTIONS = {
  partitions: { type: "string" },
  "replication-factor": { type: "string" },
  config: { type: "string", multiple: true },
  replicas: { type: "string", multiple: true },
  format: { type: "string" },
} as const;

/**
 * Runs `rill topics …`.
 *
 * @param args the arguments after `topics`
 * @param io where to write
 * @returns the exit status
 * @throws {UsageError} on a bad command line; {RillError} when the broker refuses
 * @example
 * ```ts
 * await run(["create", "orders", "--partitions", "3"], processIo());
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, OPTIONS);
  const [sub, ...rest] = positionals;
  if (values.help || sub === "help") {
    await io.out(HELP);
    return 0;
  }
  if (sub === undefined) throw new UsageError('Missing subcommand; run "rill topics --help"');
  const format = values.format ?? "text";
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--format must be text or json, got "${format}"`);
  }
  const json = format === "json";
  const admin = new Rill({ ...connection(values), retry: { retries: 2 } }).admin();
  const onlyFor = (allowed: string[]) => {
    for (const k of ["partitions", "replication-factor", "config"] as const) {
      if (values[k] !== undefined && !allowed.includes(k)) {
        throw new UsageError(`--${k} does not apply to "topics ${sub}"`);
      }
    }
  };
  switch (sub) {
    case "create": {
      onlyFor(["partitions", "replication-factor", "config"]);
      const [name] = expectPositionals(rest, ["NAME"]);
      const configs = configOptions(values.config);
      const d = await admin.createTopic({
        topic: name,
        numPartitions: intOption("--partitions", values.partitions, 1),
        replicationFactor: intOption("--replication-factor", values["replication-factor"], 1),
        configEntries: configs
          ? Object.entries(configs).map(([n, v]) => ({ name: n, value: v }))
          : undefined,
      });
      await io.out(
        `Created topic ${d.name} with ${d.partitions.length} partition(s), replication factor ${d.replicationFactor}\n`,
      );
      return 0;
    }
    case "list": {
      onlyFor([]);
      expectPositionals(rest, []);
      const topics = await admin.listTopicSummaries();
      topics.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      await io.out(
        json ? JSON.stringify({ topics }) + "\n" : topics.map((t) => `${t.name}\n`).join(""),
      );
      return 0;
    }
    case "describe": {
      onlyFor([]);
      const [name] = expectPositionals(rest, ["NAME"]);
      const d = await admin.describeTopic(name);
      await io.out(json ? JSON.stringify(d) + "\n" : formatDescription(d));
      return 0;
    }
    case "alter": {
      onlyFor(["partitions", "config"]);
      const [name] = expectPositionals(rest, ["NAME"]);
      const partitions = intOption("--partitions", values.partitions, 1);
      const configs = configOptions(values.config);
      if (partitions === undefined && configs === undefined) {
        throw new UsageError("Nothing to alter: give --partitions and/or --config");
      }
      const d = await admin.alterTopic(name, { partitions, configs });
      await io.out(formatDescription(d));
      return 0;
    }
    case "delete": {
      onlyFor([]);
      const [name] = expectPositionals(rest, ["NAME"]);
      await admin.deleteTopic(name);
      await io.out(`Deleted topic ${name}\n`);
      return 0;
    }
    case "reassign": {
      onlyFor([]);
      const [name] = expectPositionals(rest, ["NAME"]);
      const moves = (values.replicas ?? []).map((v) => {
        const m = /^(\d+)=(\d+(?:,\d+)*)$/.exec(v);
        if (!m) throw new UsageError(`--replicas must be PARTITION=ID,ID…, got "${v}"`);
        return { partition: Number(m[1]), replicas: m[2].split(",").map(Number) };
      });
      if (moves.length === 0) throw new UsageError("Nothing to move: give --replicas P=ID,ID…");
      const d = await admin.reassignPartitions(name, moves);
      await io.out(`Reassignment of ${name} started\n${formatDescription(d)}`);
      return 0;
    }
    default:
      throw new UsageError(`Unknown subcommand "topics ${sub}"; run "rill topics --help"`);
  }
}

/**
 * Formats a topic description as `kafka-topics --describe` does: one summary line, then one
 * line per partition.
 *
 * @param d the description
 * @returns the text, ending in a newline
 * @example
 * ```ts
 * await io.out(formatDescription(await admin.describeTopic("orders")));
 * ```
 */
export function formatDescription(d: TopicDescription): string {
  const configs = Object.entries(d.configs ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
  let out =
    `Topic: ${d.name}\tPartitionCount: ${d.partitions.length}\tReplicationFactor: ${d.replicationFactor}\tConfigs: ${configs}\n`;
  for (const p of d.partitions) {
    out += `\tTopic: ${d.name}\tPartition: ${p.partition}\tLeader: ${p.leader}\tReplicas: ${
      (p.replicas ?? []).join(",")
    }\tIsr: ${
      (p.isr ?? []).join(",")
    }\tLogStartOffset: ${p.logStartOffset}\tHighWatermark: ${p.highWatermark}${
      p.logFailure ? `\tLog: FAILED (${p.logFailure})` : ""
    }\n`;
  }
  return out;
}
