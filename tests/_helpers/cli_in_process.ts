/**
 * Runs the CLI in-process (no subprocess) with empty stdin and captures its output.
 *
 * @module
 */
import type { CliIo } from "../../src/cli/common.ts";
import { runCli } from "../../src/cli/main.ts";

/** What a CLI run printed and its exit code. */
export interface CliResult {
  code: number | undefined;
  out: string;
  err: string;
}

/**
 * Runs `rill <args…>` in this process.
 *
 * @param args the command line after `rill`
 * @returns exit code, stdout and stderr
 */
export async function cli(...args: string[]): Promise<CliResult> {
  let out = "", err = "";
  const io: CliIo = {
    out: (t) => Promise.resolve(void (out += t)),
    err: (t) => Promise.resolve(void (err += t)),
    stdin: () => new ReadableStream({ start: (c) => c.close() }),
  };
  const code = await runCli(args, io);
  return { code, out, err };
}
