/**
 * The dispatcher behind `cli.ts`: picks the command, loads its module lazily (so client
 * commands never load server code), and turns every failure into a one-line message on
 * stderr with a non-zero exit status.
 *
 * Exit statuses: 0 success, 1 a failed operation (the broker answered an error or could
 * not be reached), 2 a usage mistake.
 *
 * @module
 */
import { type CliIo, didYouMean, processIo, UsageError } from "./common.ts";

/**
 * The top-level help.
 *
 * @example
 * ```ts
 * console.log(HELP);
 * ```
 */
export const HELP = `rill — a Deno-native stream platform

Usage: rill <command> [options]

Server roles:
  broker     run a broker      [--id N] [--data DIR] [--kv PATH|URL] [--listen HOST:PORT] [--advertised-url URL]
                               [--auth] [--tls-cert FILE --tls-key FILE] [--cluster-secret S]
  follower   run an observer replica (same flags)

Client commands (each takes --broker URL, default $RILL_BROKER or http://127.0.0.1:8092,
--api-key KEY, default $RILL_API_KEY, and --ca-file PEM for https with a private CA):
  topics     create | list | describe | alter | delete
  produce    TOPIC            send stdin lines as records
  consume    TOPIC            print records, one a line
  groups     list | describe | reset-offsets | delete
  cluster    status
  auth       bootstrap | keys create|list|revoke | whoami     (brokers run with --auth)
  acls       add | list | remove
  console    serve the web console for a broker on its own address (every broker also serves it at /ui)
  perf       produce | consume   load test: progress each second, a summary at the end

Run "rill <command> --help" for a command's options.
`;

/**
 * A client command module: its help text and its entry point.
 *
 * @example
 * ```ts
 * const mod: CommandModule = await import("./topics.ts");
 * await mod.run(["list"], processIo());
 * ```
 */
export interface CommandModule {
  /** runs the command, returning the exit status */
  run(args: string[], io: CliIo): Promise<number>;
}

const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  topics: () => import("./topics.ts"),
  produce: () => import("./produce.ts"),
  consume: () => import("./consume.ts"),
  cluster: () => import("./cluster.ts"),
  groups: () => import("./groups.ts"),
  auth: () => import("./auth.ts"),
  acls: () => import("./acls.ts"),
  console: () => import("./console.ts"),
  perf: () => import("./perf.ts"),
};

/**
 * Runs the CLI.
 *
 * @param args the command line after `rill`
 * @param io where to write (default: the process's streams)
 * @returns the exit status (0 once a broker or follower stopped cleanly on a signal)
 * @example
 * ```ts
 * const status = await runCli(["topics", "list", "--broker", "http://127.0.0.1:8092"]);
 * ```
 */
export async function runCli(args: string[], io: CliIo = processIo()): Promise<number | undefined> {
  const [command, ...rest] = args;
  try {
    if (command === undefined || command === "--help" || command === "-h" || command === "help") {
      await (command === undefined ? io.err(HELP) : io.out(HELP));
      return command === undefined ? 2 : 0;
    }
    if (command === "--version") {
      await io.out("rill 0.1.0\n");
      return 0;
    }
    if (command === "broker" || command === "follower") {
      const { runBroker } = await import("./broker.ts");
      await runBroker(rest, command);
      // Stopped cleanly (its logs closed): exit, rather than wait for the event loop to
      // empty. What the stop cannot close itself: a connection whose peer stopped reading
      // (the WebSocket close frame, or an HTTP answer past the stop's grace, is never
      // written; Deno has no forced close of either), which the exit closes.
      return 0;
    }
    const load = COMMANDS[command];
    if (!load) {
      const hint = didYouMean(command, [...Object.keys(COMMANDS), "broker", "follower"]);
      throw new UsageError(
        `Unknown command "${command}"${
          hint ? ` (did you mean "${hint}"?)` : ""
        }; run "rill --help"`,
      );
    }
    const mod = await load();
    return await mod.run(rest, io);
  } catch (e) {
    await io.err(`rill: ${oneLine(e)}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

/**
 * The one-line message of an error: its code (for a RillError) and first line.
 *
 * @param e anything thrown
 * @returns a single line
 * @example
 * ```ts
 * oneLine(new Error("boom\nstack")); // "boom"
 * ```
 */
export function oneLine(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const first = e.message.split("\n")[0].trim() || e.name;
    return typeof code === "string" && /^[A-Z_]+$/.test(code) ? `${code}: ${first}` : first;
  }
  return String(e).split("\n")[0];
}
