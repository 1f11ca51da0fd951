/**
 * `rill` — one entry for every role and command.
 *
 * ```
 * rill broker   [--id N] [--data DIR] [--kv PATH|URL] [--listen HOST:PORT] [--advertised-url URL]
 * rill follower [same flags]
 * rill topics   create|list|describe|alter|delete …
 * rill produce  TOPIC …            lines from stdin
 * rill consume  TOPIC …            one record a line
 * rill groups   list|describe|reset-offsets|delete …
 * rill cluster  status
 * ```
 *
 * Server roles are imported lazily, so client commands never load server code. Every
 * command answers `--help`; exit status is 0 on success and non-zero with a one-line
 * message on stderr otherwise.
 *
 * @example
 * ```sh
 * deno run -A cli.ts broker --listen 127.0.0.1:8092 --data ./data
 * echo "hello" | deno run -A cli.ts produce greetings
 * ```
 *
 * @module
 */
import { runCli } from "./src/cli/main.ts";

if (import.meta.main) {
  const code = await runCli(Deno.args);
  // A broker keeps running until a signal; client commands exit with their status.
  if (code !== undefined) Deno.exit(code);
}
