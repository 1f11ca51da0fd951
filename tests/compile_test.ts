/**
 * `deno compile` needs a `denort` download that this machine cannot reach, so this test
 * checks what can be checked here: `deno task compile:check` (.ci/compile.ts with
 * DENORT_BIN pointed at the deno binary) compiles the whole module graph of cli.ts (every role and
 * command) into one executable. The output is a plain deno binary and is not run.
 */
import assert from "node:assert/strict";
import { tempDir } from "./_helpers/temp_dir.ts";

Deno.test({
  name: "deno compile builds one binary from cli.ts's whole module graph",
  async fn() {
    await using dir = await tempDir();
    const output = `${dir.path}/rill`;
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile:check", "--output", output],
      cwd: new URL("..", import.meta.url).pathname,
      env: { NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const info = await Deno.stat(output);
    assert.ok(info.isFile && info.size > 1_000_000);
  },
});
