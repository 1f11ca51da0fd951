/**
 * `rill console [--broker URL] [--listen HOST:PORT]`: serves the web console on its own
 * (the same pages every broker serves at `/ui`), talking to the broker at `--broker`. Useful
 * where the brokers' own `/ui` is not reachable from the operator's browser, or to keep the
 * console off the brokers' address.
 *
 * @module
 */
import { consoleRoutes } from "../http/console.ts";
import { brokerUrl, type CliIo, expectPositionals, parseCommand, UsageError } from "./common.ts";

/**
 * The help of `rill console`.
 *
 * @example
 * ```ts
 * console.log(HELP);
 * ```
 */
export const HELP = `Usage:
  rill console [--broker URL] [--listen HOST:PORT]

Serves the web console (the pages every broker serves at /ui) on its own address. The pages
talk to the broker's HTTP API from the browser; with --auth, paste an API key into the page.

Options:
  --broker URL        broker the console talks to (default $RILL_BROKER or http://127.0.0.1:8092)
  --listen HOST:PORT  address to serve the console on (default 127.0.0.1:8093)
  -h, --help          show this help
`;

/**
 * Runs `rill console`: serves until the process is interrupted.
 *
 * @param args the arguments after `console`
 * @param io where to write
 * @returns 0 after SIGINT or SIGTERM
 * @throws {UsageError} on a bad command line
 */
export async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, { listen: { type: "string" } });
  if (values.help) {
    await io.out(HELP);
    return 0;
  }
  expectPositionals(positionals, []);
  const listen = (values.listen as string | undefined) ?? "127.0.0.1:8093";
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) {
    throw new UsageError(`--listen must be HOST:PORT, got "${listen}"`);
  }
  const hostname = m[1].replace(/^\[(.*)\]$/, "$1");
  const api = brokerUrl(values.broker as string | undefined);
  const app = consoleRoutes({ apiUrl: api });
  const stop = new AbortController();
  const server = Deno.serve({
    hostname,
    port: Number(m[2]),
    signal: stop.signal,
    onListen: (addr) => {
      const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
      void io.out(`rill console listening on http://${host}:${addr.port}/ui for ${api}\n`);
    },
  }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/") return Response.redirect(new URL("/ui", req.url), 302);
    return app.fetch(req);
  });
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await server.finished;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  return 0;
}
