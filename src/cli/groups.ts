/**
 * `rill groups list | describe G | reset-offsets G --topic T --to-… | delete G`: consumer
 * group administration through the client's Admin.
 *
 * @module
 */
import { type GroupDescription, type GroupResetTo, Rill } from "../client/mod.ts";
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
  rill groups reset-offsets GROUP --topic T (--to-earliest | --to-latest | --to-offset N | --to-timestamp MS)
                            [--partition P]…
  rill groups delete GROUP

reset-offsets and delete work only while the group has no members.

Options:
  --broker URL   broker to talk to (default $RILL_BROKER or http://127.0.0.1:8092)
  -h, --help     show this help
`;

const OPTIONS = {
  topic: { type: "string" },
  "to-earliest": { type: "boolean" },
  "to-latest": { type: "boolean" },
  "to-offset": { type: "string" },
  "to-timestamp": { type: "string" },
  partition: { type: "string", multiple: true },
} as const;

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
    "partition",
  ] as const;
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
      await io.out(
        groups.map((g) =>
          `${g.groupId}\t${g.state}\tmembers=${
            Array.isArray(g.members) ? g.members.length : g.members
          }\n`
        ).join(""),
      );
      return 0;
    }
    case "describe": {
      const [group] = expectPositionals(rest, ["GROUP"]);
      await io.out(formatGroup(await admin.describeGroup(group)));
      return 0;
    }
    case "reset-offsets": {
      const [group] = expectPositionals(rest, ["GROUP"]);
      if (values.topic === undefined) throw new UsageError("reset-offsets needs --topic");
      const choices: GroupResetTo[] = [];
      if (values["to-earliest"]) choices.push("earliest");
      if (values["to-latest"]) choices.push("latest");
      const offset = intOption("--to-offset", values["to-offset"], 0);
      if (offset !== undefined) choices.push({ offset });
      const timestamp = intOption("--to-timestamp", values["to-timestamp"], 0);
      if (timestamp !== undefined) choices.push({ timestamp });
      if (choices.length !== 1) {
        throw new UsageError(
          "Give exactly one of --to-earliest, --to-latest, --to-offset N, --to-timestamp MS",
        );
      }
      const partitions = values.partition?.map((p) => intOption("--partition", p, 0)!);
      const offsets = await admin.resetGroupOffsets(group, values.topic, choices[0], partitions);
      await io.out(
        offsets.map((o) => `${group}\t${o.topic}\t${o.partition}\t${o.offset}\n`).join(""),
      );
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
