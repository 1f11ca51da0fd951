/**
 * `deno task compile` and `deno task compile:check`: one `rill` binary from cli.ts.
 *
 * ```
 * deno run -A .ci/compile.ts [--output PATH]   the binary (default ./rill); downloads denort
 * deno run -A .ci/compile.ts --check [--output PATH]
 *     compiles against the running deno binary instead (DENORT_BIN): checks the module graph,
 *     permissions and embedded files where denort cannot be downloaded; the output does not
 *     run (default /tmp/rill-compile-check)
 * ```
 *
 * Two things need a script rather than a one-line task: Deno's task shell has no `command -v`
 * to find deno for DENORT_BIN (`Deno.execPath()` does it here), and `deno compile` overflows
 * its stack on a 2 MB test-data file that npm's `bintrees` (a dependency of prom-client's
 * summaries) ships, so that package's `test/` folder is left out of the binary (`--exclude`;
 * Rill never loads it).
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: { check: { type: "boolean" }, output: { type: "string" } },
  strict: true,
});
const check = values.check ?? false;
const output = values.output ?? (check ? "/tmp/rill-compile-check" : "rill");
const root = new URL("..", import.meta.url).pathname;

// The npm packages must be in the cache before their test data can be left out.
await new Deno.Command(Deno.execPath(), { args: ["cache", "cli.ts"], cwd: root }).output();
const info = await new Deno.Command(Deno.execPath(), {
  args: ["info", "--json"],
  cwd: root,
  stdout: "piped",
  stderr: "inherit",
}).output();
const npmCache: string = JSON.parse(new TextDecoder().decode(info.stdout)).npmCache;
const excludes: string[] = [];
try {
  for await (const v of Deno.readDir(`${npmCache}/registry.npmjs.org/bintrees`)) {
    excludes.push("--exclude", `${npmCache}/registry.npmjs.org/bintrees/${v.name}/test`);
  }
} catch {
  // bintrees is not in the graph (any more): nothing to leave out
}

const env: Record<string, string> = {};
if (check) env.DENORT_BIN = Deno.execPath();
const { code } = await new Deno.Command(Deno.execPath(), {
  args: ["compile", "--allow-all", ...excludes, "--output", output, "cli.ts"],
  cwd: root,
  env,
  stdout: "inherit",
  stderr: "inherit",
}).output();
Deno.exit(code);
