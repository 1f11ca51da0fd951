/**
 * `rill cluster …`: the cluster id, the controller and every broker with its liveness and
 * load (`status`), preferred leader election (`elect-leaders`), rebalancing (`rebalance`),
 * decommissioning a broker (`decommission`) and taking it back (`recommission`), and
 * cancelling the moves under way (`cancel-moves`).
 *
 * @module
 */
import { Rill } from "../client/mod.ts";
import type { BrokerLoad, CancelMovesResult, MovePlanResult } from "../client/cluster_ops.ts";
import {
  type CliIo,
  connection,
  expectPositionals,
  intOption,
  parseCommand,
  UsageError,
} from "./common.ts";

/**
 * The help of `rill cluster`.
 *
 * @example
 * ```ts
 * console.log(HELP);
 * ```
 */
export const HELP = `Usage:
  rill cluster status                      brokers, their load, moves in progress
  rill cluster elect-leaders [--topic T]   move leadership back to preferred leaders
  rill cluster rebalance [--dry-run|--execute]
                                           even out replicas, bytes and leaders
                                           (default --dry-run: print the plan only)
  rill cluster decommission --id N [--dry-run]
                                           move every replica off broker N
  rill cluster recommission --id N         take a decommission back: N may hold replicas
                                           again; moves off it stop (under way: rolled back)
  rill cluster cancel-moves                drop planned moves and roll back moves under
                                           way (partitions keep their previous replicas)

Options:
  --format text|json  text (default) or JSON
  --broker URL   broker to talk to (default $RILL_BROKER or http://127.0.0.1:8092)
  --api-key KEY  API key (default $RILL_API_KEY)
  --ca-file PEM  CA certificate for https:// brokers (default $RILL_CA_FILE)
  -h, --help     show this help
`;

const OPTIONS = {
  topic: { type: "string" },
  "dry-run": { type: "boolean" },
  execute: { type: "boolean" },
  id: { type: "string" },
  format: { type: "string" },
} as const;

/**
 * Runs `rill cluster …`.
 *
 * @param args the arguments after `cluster`
 * @param io where to write
 * @returns the exit status
 * @throws {UsageError} on a bad command line; {RillError} when the broker cannot answer
 * @example
 * ```ts
 * await run(["status"], processIo());
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, OPTIONS);
  const [sub, ...rest] = positionals;
  if (values.help || sub === "help") {
    await io.out(HELP);
    return 0;
  }
  const known = [
    "status",
    "elect-leaders",
    "rebalance",
    "decommission",
    "recommission",
    "cancel-moves",
  ];
  if (sub === undefined || !known.includes(sub)) {
    throw new UsageError(
      sub === undefined
        ? 'Missing subcommand; run "rill cluster --help"'
        : `Unknown subcommand "cluster ${sub}"; run "rill cluster --help"`,
    );
  }
  expectPositionals(rest, []);
  if (values["dry-run"] && values.execute) {
    throw new UsageError("--dry-run and --execute cannot go together");
  }
  if (sub === "cancel-moves" || sub === "recommission") {
    const given: Record<string, unknown> = values;
    const stray = ["topic", "dry-run", "execute", ...(sub === "cancel-moves" ? ["id"] : [])]
      .find((k) => given[k] !== undefined);
    if (stray !== undefined) throw new UsageError(`cluster ${sub} takes no --${stray}`);
  }
  const format = values.format ?? "text";
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--format must be text or json, got "${format}"`);
  }
  const rill = new Rill({ ...connection(values), retry: { retries: 2 } });
  if (format === "json") {
    const answer = sub === "status"
      ? { ...await rill.admin().describeCluster(), balance: await rill.cluster().status() }
      : sub === "elect-leaders"
      ? await rill.cluster().electLeaders(values.topic)
      : sub === "rebalance"
      ? await rill.cluster().rebalance({ execute: values.execute === true })
      : sub === "recommission"
      ? await rill.cluster().recommission(brokerIdOption(sub, values.id))
      : sub === "cancel-moves"
      ? await rill.cluster().cancelMoves()
      : await decommission(rill, values.id, !values["dry-run"]);
    await io.out(JSON.stringify(answer) + "\n");
    return 0;
  }
  switch (sub) {
    case "status":
      await io.out(await status(rill));
      return 0;
    case "elect-leaders": {
      const r = await rill.cluster().electLeaders(values.topic);
      let out = `Elected: ${r.elected.length}\tNot eligible: ${r.notEligible.length}\n`;
      for (const e of r.elected) {
        out += `\t${e.topic}-${e.partition}\tLeader: ${e.leader}\tEpoch: ${e.leaderEpoch}\n`;
      }
      for (const e of r.notEligible) {
        out +=
          `\t${e.topic}-${e.partition}\tPreferred: ${e.preferred} cannot lead now (leader ${e.leader})\n`;
      }
      await io.out(out);
      return 0;
    }
    case "rebalance": {
      const plan = await rill.cluster().rebalance({ execute: values.execute === true });
      await io.out(describePlan(plan));
      return 0;
    }
    case "recommission": {
      const id = brokerIdOption(sub, values.id);
      await io.out(
        `Broker ${id} is no longer decommissioned.\n` +
          describeCancel(await rill.cluster().recommission(id)) +
          'Replicas already moved off stay where they are: run "rill cluster rebalance" to even out.\n',
      );
      return 0;
    }
    case "cancel-moves":
      await io.out(describeCancel(await rill.cluster().cancelMoves()));
      return 0;
    default: {
      await io.out(describePlan(await decommission(rill, values.id, !values["dry-run"])));
      return 0;
    }
  }
}

function decommission(rill: Rill, raw: string | undefined, execute: boolean) {
  return rill.cluster().decommission(brokerIdOption("decommission", raw), { execute });
}

function brokerIdOption(sub: string, raw: string | undefined): number {
  const id = intOption("id", raw);
  if (id === undefined) throw new UsageError(`${sub} needs --id N`);
  return id;
}

function describeCancel(r: CancelMovesResult): string {
  let out = `Dropped: ${r.dropped.length} planned move(s)\tRolled back: ${r.rolledBack.length}` +
    `\tNot rolled back: ${r.notRolledBack.length}\n`;
  for (const m of r.rolledBack) {
    out += `\t${m.topic}-${m.partition}\tback to [${m.replicas}]\tLeader: ${m.leader}\n`;
  }
  for (const m of r.notRolledBack) {
    out += `\t${m.topic}-${m.partition}\t-> [${m.target}] goes on: ${m.reason}\n`;
  }
  if (r.decommissioned.length > 0) {
    out += `Still decommissioned: ${r.decommissioned.join(", ")}` +
      ` (rill cluster recommission --id N takes that back)\n`;
  }
  return out;
}

async function status(rill: Rill): Promise<string> {
  const c = await rill.admin().describeCluster();
  const s = await rill.cluster().status();
  let out =
    `Cluster: ${c.clusterId}\tController: ${c.controllerId}\tBrokers: ${c.brokers.length}\n`;
  const loads = new Map(s.brokers.map((b) => [b.id, b]));
  for (const b of c.brokers) {
    const l = loads.get(b.id);
    out += `\tBroker: ${b.id}\tRole: ${b.role}\tURL: ${b.url}\tAlive: ${b.alive ? "yes" : "no"}${
      b.kafka ? `\tKafka: ${b.kafka}` : ""
    }`;
    if (l) {
      out += `\tRack: ${l.rack ?? "-"}\tReplicas: ${l.replicas}\tLeaders: ${l.leaders}` +
        `\tPreferred: ${l.preferredLeaders}\tBytes: ${l.bytes}`;
      if (l.decommissioned) {
        out += `\tDecommissioned: ${l.safeToStop ? "safe to stop" : "moving replicas off"}`;
      }
    }
    out += "\n";
  }
  out += `Moving: ${s.moving.length}\tPending: ${s.pending}` +
    `\tUnder-replicated: ${s.underReplicated}\tNot on preferred leader: ${s.nonPreferredLeaders}\n`;
  if (s.plan) out += `Plan: ${s.plan.kind}, ${s.plan.total} move(s)\n`;
  for (const m of s.moving) {
    out += `\t${m.topic}-${m.partition}\t[${m.replicas}] -> [${m.target}]\tISR: [${m.isr}]\n`;
  }
  return out;
}

function describePlan(plan: MovePlanResult): string {
  let out = `${plan.executed ? "Executing" : "Dry run"}: ${plan.moves.length} move(s)\n`;
  for (const m of plan.moves) out += `\t${m.topic}-${m.partition}\t-> [${m.replicas}]\n`;
  const row = (l: BrokerLoad) =>
    `replicas ${l.replicas}, preferred leaders ${l.preferredLeaders}, bytes ${l.bytes}`;
  const after = new Map(plan.after.map((l) => [l.id, l]));
  for (const b of plan.before) {
    out += `\tBroker ${b.id}: ${row(b)} -> ${after.has(b.id) ? row(after.get(b.id)!) : "-"}\n`;
  }
  if (!plan.executed && plan.moves.length > 0) out += "Run with --execute to start it.\n";
  return out;
}
