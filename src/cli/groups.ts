/**
 * `rill groups list | describe G | reset-offsets G --topic T --to-… | delete G`: consumer
 * group administration through the client's Admin.
 *
 * @module
 */
import { type GroupDescription, Rill } from "../client/mod.ts";
import {
  type CliIo,
  connection,
  expectPositionals,
  intOption,
  parseCommand,
  UsageError,
} from "./common.ts";

/**
 * The help of `rill groups`.
 *
 * @example
 * ```ts
 * console.log(HELP);
 * ```
 */
export const HELP = `Usage:
  rill groups list
  rill groups describe GROUP
  rill groups reset-offsets GROUP (--topic T | --all-topics) [--partition P]…
        (--to-earliest | --to-latest | --to-offset N | --to-datetime ISO | --to-timestamp MS
         | --shift-by N | --by-duration DURATION) [--execute]
  rill groups delete GROUP

reset-offsets shows the offsets it would set (a dry run, as Kafka's tool); --execute sets
them. Setting them, and delete, work only while the group has no members.

Options:
  --topic T            reset the group's offsets of topic T (every partition, or --partition)
  --all-topics         reset every topic the group has committed offsets for
  --partition P        only partition P (repeatable; with --topic)
  --to-earliest        to each partition's log start
  --to-latest          to each partition's end (the group skips what is there now)
  --to-offset N        to offset N (kept within each partition's log)
  --to-datetime ISO    to the first record at or after an ISO 8601 time
                       (2026-12-05T08:00:00Z); --to-timestamp MS: the same in milliseconds
  --shift-by N         move the committed offsets by N (negative: back), within the log
  --by-duration D      to the first record at or after D ago (30s, 15m, 2h, 1d, or
                       ISO 8601 PT1H30M)
  --execute            set the offsets (without it: print them only)
  --format text|json   list, describe and reset-offsets: a table with a header line
                       (default), or JSON
  --broker URL         broker to talk to (default $RILL_BROKER or http://127.0.0.1:8092)
  --api-key KEY        API key (default $RILL_API_KEY)
  --ca-file PEM        CA certificate for https:// brokers (default $RILL_CA_FILE)
  -h, --help           show this help
`;

const OPTIONS = {
  topic: { type: "string" },
  "to-earliest": { type: "boolean" },
  "to-latest": { type: "boolean" },
  "to-offset": { type: "string" },
  "to-timestamp": { type: "string" },
  "to-datetime": { type: "string" },
  "shift-by": { type: "string" },
  "by-duration": { type: "string" },
  "all-topics": { type: "boolean" },
  execute: { type: "boolean" },
  partition: { type: "string", multiple: true },
  format: { type: "string" },
} as const;

/**
 * Parses a duration: `30s`, `15m`, `2h`, `1d`, `500ms`, or ISO 8601 (`PT1H30M`, `P1D`).
 *
 * @param raw the text
 * @returns milliseconds
 * @throws {UsageError} when it is neither
 * @example
 * ```ts
 * parseDuration("PT1H30M"); // 5400000
 * ```
 */
export function parseDuration(raw: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const simple = /^(\d+)(ms|s|m|h|d)$/.exec(raw);
  if (simple) return Number(simple[1]) * units[simple[2]];
  const iso = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(raw);
  if (iso && raw !== "P" && !raw.endsWith("T")) {
    const [, d, h, m, sec] = iso;
    return Number(d ?? 0) * units.d + Number(h ?? 0) * units.h + Number(m ?? 0) * units.m +
      Math.round(Number(sec ?? 0) * 1000);
  }
  throw new UsageError(
    `--by-duration must be like 30s, 15m, 2h, 1d or ISO 8601 (PT1H30M), got "${raw}"`,
  );
}

/** One partition's planned reset. */
interface PlannedReset {
  topic: string;
  partition: number;
  current: number | null;
  target: number;
}

/**
 * A table with a header line, columns separated by tabs.
 *
 * @param head the column names
 * @param rows the rows
 * @returns the text
 */
export function table(head: string[], rows: (string | number | null | undefined)[][]): string {
  return [head, ...rows].map((r) => r.map((c) => c ?? "").join("\t") + "\n").join("");
}

/**
 * Runs `rill groups …`.
 *
 * @param args the arguments after `groups`
 * @param io where to write
 * @returns the exit status
 * @throws {UsageError} on a bad command line; {RillError} when the broker refuses
 * @example
 * ```ts
 * await run(["describe", "billing"], processIo());
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, OPTIONS);
  const [sub, ...rest] = positionals;
  if (values.help || sub === "help") {
    await io.out(HELP);
    return 0;
  }
  if (sub === undefined) throw new UsageError('Missing subcommand; run "rill groups --help"');
  const resetOnly = [
    "topic",
    "to-earliest",
    "to-latest",
    "to-offset",
    "to-timestamp",
    "to-datetime",
    "shift-by",
    "by-duration",
    "all-topics",
    "execute",
    "partition",
  ] as const;
  const format = values.format ?? "text";
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--format must be text or json, got "${format}"`);
  }
  const json = format === "json";
  if (sub !== "reset-offsets") {
    for (const k of resetOnly) {
      if (values[k] !== undefined) {
        throw new UsageError(`--${k} applies only to "groups reset-offsets"`);
      }
    }
  }
  const admin = new Rill({ ...connection(values), retry: { retries: 2 } }).admin();
  switch (sub) {
    case "list": {
      expectPositionals(rest, []);
      const groups = await admin.listGroups();
      groups.sort((a, b) => a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0);
      const rows = groups.map((g) => ({
        groupId: g.groupId,
        state: g.state,
        members: Array.isArray(g.members) ? g.members.length : g.members,
      }));
      await io.out(
        json
          ? JSON.stringify({ groups: rows }) + "\n"
          : table(["GROUP", "STATE", "MEMBERS"], rows.map((g) => [g.groupId, g.state, g.members])),
      );
      return 0;
    }
    case "describe": {
      const [group] = expectPositionals(rest, ["GROUP"]);
      const d = await admin.describeGroup(group);
      await io.out(json ? JSON.stringify(d) + "\n" : formatGroup(d));
      return 0;
    }
    case "reset-offsets": {
      const [group] = expectPositionals(rest, ["GROUP"]);
      const plan = await planReset(admin, group, values);
      const execute = values.execute ?? false;
      if (execute) {
        // One partition at a time, each to the offset shown (as Kafka's tool commits them).
        for (const p of plan) {
          await admin.resetGroupOffsets(group, p.topic, { offset: p.target }, [p.partition]);
        }
      }
      if (json) {
        await io.out(JSON.stringify({ group, executed: execute, offsets: plan }) + "\n");
      } else {
        await io.out(
          table(
            ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"],
            plan.map((p) => [group, p.topic, p.partition, p.current ?? "-", p.target]),
          ),
        );
        if (!execute) {
          await io.err("Dry run: nothing was changed; add --execute to set these offsets\n");
        }
      }
      return 0;
    }
    case "delete": {
      const [group] = expectPositionals(rest, ["GROUP"]);
      await admin.deleteGroup(group);
      await io.out(`Deleted group ${group}\n`);
      return 0;
    }
    default:
      throw new UsageError(`Unknown subcommand "groups ${sub}"; run "rill groups --help"`);
  }
}

/**
 * Formats a group description: one summary line, a line per member, a line per committed
 * partition.
 *
 * @param d the description
 * @returns the text, ending in a newline
 * @example
 * ```ts
 * await io.out(formatGroup(await admin.describeGroup("billing")));
 * ```
 */
/**
 * Works out the offsets `reset-offsets` would set, partition by partition.
 *
 * @param admin the admin client
 * @param group the group
 * @param values the parsed options
 * @returns one planned reset per partition
 * @throws {UsageError} on a bad combination or value
 */
async function planReset(
  admin: ReturnType<Rill["admin"]>,
  group: string,
  values: {
    topic?: string;
    "all-topics"?: boolean;
    partition?: string[];
    "to-earliest"?: boolean;
    "to-latest"?: boolean;
    "to-offset"?: string;
    "to-timestamp"?: string;
    "to-datetime"?: string;
    "shift-by"?: string;
    "by-duration"?: string;
  },
): Promise<PlannedReset[]> {
  if ((values.topic === undefined) === !values["all-topics"]) {
    throw new UsageError("reset-offsets needs exactly one of --topic T or --all-topics");
  }
  if (values["all-topics"] && values.partition !== undefined) {
    throw new UsageError("--partition applies with --topic, not --all-topics");
  }
  type Spec =
    | { kind: "earliest" | "latest" }
    | { kind: "offset"; offset: number }
    | { kind: "timestamp"; timestamp: number }
    | { kind: "shift"; by: number };
  const specs: Spec[] = [];
  if (values["to-earliest"]) specs.push({ kind: "earliest" });
  if (values["to-latest"]) specs.push({ kind: "latest" });
  const offset = intOption("--to-offset", values["to-offset"], 0);
  if (offset !== undefined) specs.push({ kind: "offset", offset });
  const ts = intOption("--to-timestamp", values["to-timestamp"], 0);
  if (ts !== undefined) specs.push({ kind: "timestamp", timestamp: ts });
  const dt = values["to-datetime"];
  if (dt !== undefined) {
    const t = /^\d{4}-\d{2}-\d{2}/.test(dt) ? Date.parse(dt) : NaN;
    if (Number.isNaN(t)) {
      throw new UsageError(
        `--to-datetime must be an ISO 8601 time (2026-12-05T08:00:00Z), got "${dt}"`,
      );
    }
    specs.push({ kind: "timestamp", timestamp: t });
  }
  const shift = intOption("--shift-by", values["shift-by"], Number.MIN_SAFE_INTEGER);
  if (shift !== undefined) specs.push({ kind: "shift", by: shift });
  const duration = values["by-duration"];
  if (duration !== undefined) {
    specs.push({ kind: "timestamp", timestamp: Date.now() - parseDuration(duration) });
  }
  if (specs.length !== 1) {
    throw new UsageError(
      "Give exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime ISO, " +
        "--to-timestamp MS, --shift-by N, --by-duration D",
    );
  }
  const spec = specs[0];
  const committed = (await admin.describeGroup(group).catch((e) => {
    // A group that never committed may not exist yet: resetting creates its offsets.
    if ((e as { code?: string }).code === "GROUP_ID_NOT_FOUND") return null;
    throw e;
  }))?.offsets ?? [];
  const current = new Map(committed.map((o) => [`${o.topic}\u0000${o.partition}`, o.offset]));
  const topics = values.topic !== undefined
    ? [values.topic]
    : [...new Set(committed.map((o) => o.topic))].sort();
  if (topics.length === 0) {
    throw new UsageError(`Group "${group}" has no committed offsets: name a --topic`);
  }
  const wanted = values.partition?.map((p) => intOption("--partition", p, 0)!);
  const plan: PlannedReset[] = [];
  for (const topic of topics) {
    const bounds = await admin.fetchTopicOffsets(topic);
    for (const b of bounds) {
      if (wanted && !wanted.includes(b.partition)) continue;
      if (values["all-topics"] && !current.has(`${topic}\u0000${b.partition}`)) continue;
      const cur = current.get(`${topic}\u0000${b.partition}`) ?? null;
      const clamp = (n: number) => Math.min(b.high, Math.max(b.low, n));
      let target: number;
      switch (spec.kind) {
        case "earliest":
          target = b.low;
          break;
        case "latest":
          target = b.high;
          break;
        case "offset":
          target = clamp(spec.offset);
          break;
        case "timestamp":
          target = await admin.fetchOffset(topic, b.partition, { timestamp: spec.timestamp });
          break;
        case "shift":
          if (cur === null) {
            throw new UsageError(
              `--shift-by needs a committed offset; group "${group}" has none for ${topic}-${b.partition}`,
            );
          }
          target = clamp(cur + spec.by);
      }
      plan.push({ topic, partition: b.partition, current: cur, target });
    }
  }
  if (wanted) {
    const known = new Set(plan.map((p) => p.partition));
    const missing = wanted.filter((p) => !known.has(p));
    if (missing.length > 0) {
      throw new UsageError(`Topic "${values.topic}" has no partition ${missing.join(", ")}`);
    }
  }
  return plan;
}

export function formatGroup(d: GroupDescription): string {
  let out =
    `Group: ${d.groupId}\tState: ${d.state}\tGeneration: ${d.generation}\tMembers: ${d.members.length}\tTotalLag: ${
      d.totalLag ?? d.offsets.reduce((n, o) => n + (o.lag ?? 0), 0)
    }\n`;
  for (const m of d.members) {
    const parts = (m.assignment ?? []).map((a) => `${a.topic}-${a.partition}`).join(",");
    out += `\tMember: ${m.memberId}\tAssignment: ${parts}\n`;
  }
  for (const o of d.offsets) {
    out += `\tTopic: ${o.topic}\tPartition: ${o.partition}\tOffset: ${o.offset}\tLogEndOffset: ${
      o.logEndOffset ?? ""
    }\tLag: ${o.lag ?? ""}${o.logEndOffsetAgeMs ? `\tAgeMs: ${o.logEndOffsetAgeMs}` : ""}\n`;
  }
  return out;
}
