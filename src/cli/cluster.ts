/**
 * `rill cluster status`: the cluster id, the controller and every broker with its liveness.
 *
 * @module
 */
import { Rill } from "../client/mod.ts";
import { type CliIo, connection, expectPositionals, parseCommand, UsageError } from "./common.ts";

/**
 * The help of `rill cluster`.
 *
 * @example
 * ```ts
 * console.log(HELP);
 * ```
 */
export const HELP = `Usage:
  rill cluster status

Options:
  --format text|json  text (default) or JSON
  --broker URL   broker to talk to (default $RILL_BROKER or http://127.0.0.1:8092)
  --api-key KEY  API key (default $RILL_API_KEY)
  --ca-file PEM  CA certificate for https:// brokers (default $RILL_CA_FILE)
  -h, --help     show this help
`;

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
  const { values, positionals } = parseCommand(args, { format: { type: "string" } });
  const [sub, ...rest] = positionals;
  if (values.help || sub === "help") {
    await io.out(HELP);
    return 0;
  }
  if (sub !== "status") {
    throw new UsageError(
      sub === undefined
        ? 'Missing subcommand; run "rill cluster --help"'
        : `Unknown subcommand "cluster ${sub}"; run "rill cluster --help"`,
    );
  }
  expectPositionals(rest, []);
  const format = values.format ?? "text";
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--format must be text or json, got "${format}"`);
  }
  const admin = new Rill({ ...connection(values), retry: { retries: 2 } }).admin();
  const c = await admin.describeCluster();
  if (format === "json") {
    await io.out(JSON.stringify(c) + "\n");
    return 0;
  }
  let out =
    `Cluster: ${c.clusterId}\tController: ${c.controllerId}\tBrokers: ${c.brokers.length}\n`;
  for (const b of c.brokers) {
    out += `\tBroker: ${b.id}\tRole: ${b.role}\tURL: ${b.url}\tAlive: ${b.alive ? "yes" : "no"}${
      b.kafka ? `\tKafka: ${b.kafka}` : ""
    }\n`;
  }
  await io.out(out);
  return 0;
}
