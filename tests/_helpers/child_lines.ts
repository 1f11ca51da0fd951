/**
 * A child process whose stdout lines can be awaited (no sleeps): `waitLine(re)` resolves
 * with the first line (past or future) matching `re`.
 *
 * @module
 */

/** A running child with awaitable stdout lines. */
export interface LineChild extends AsyncDisposable {
  /** resolves with the first line matching `re` (a RegExp or a test), rejecting if the
   * child exits first or after `timeoutMs` */
  waitLine(re: RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>;
  /** sends a signal */
  kill(signal?: Deno.Signal): void;
  /** the exit status */
  status: Promise<Deno.CommandStatus>;
  /** stderr so far */
  stderr(): string;
}

/**
 * Spawns `deno run -A script args…`.
 *
 * @param script path of the script
 * @param args its arguments
 * @returns the child
 */
export function spawnLines(script: string, args: string[]): LineChild {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines: string[] = [];
  let waiters: {
    re: RegExp | ((line: string) => boolean);
    resolve: (l: string) => void;
    fail: () => void;
  }[] = [];
  let exited = false;
  let err = "";
  const stdoutDone = (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        waiters = waiters.filter((w) => {
          if (!matches(w.re, line)) return true;
          w.resolve(line);
          return false;
        });
      }
    }
  })();
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) err += chunk;
  })();
  const status = child.status.then(async (s) => {
    await stdoutDone;
    exited = true;
    for (const w of waiters) w.fail();
    waiters = [];
    return s;
  });
  const kill = (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch {
      // already exited
    }
  };
  return {
    waitLine(re, timeoutMs = 60_000) {
      const found = lines.find((l) => matches(re, l));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`No line ${re} within ${timeoutMs} ms:\n${err}`)),
          timeoutMs,
        );
        const fail = () => {
          clearTimeout(timer);
          reject(new Error(`The child exited before printing ${re}:\n${err}`));
        };
        if (exited) return fail();
        waiters.push({
          re,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
          fail,
        });
      });
    },
    kill,
    status,
    stderr: () => err,
    async [Symbol.asyncDispose]() {
      kill("SIGKILL");
      await status;
    },
  };
}

function matches(re: RegExp | ((line: string) => boolean), line: string): boolean {
  return typeof re === "function" ? re(line) : re.test(line);
}

/**
 * Runs `deno run -A --config deno.json script args…` and SIGKILLs it as soon as it has
 * printed `killAfter` whole lines, for crash tests: the child prints a line per
 * acknowledged write. Asserts that the child was killed (not finished or crashed).
 *
 * @param script path of the child script
 * @param args its arguments
 * @param killAfter how many lines to wait for
 * @returns every line the child printed in full (a last line without its newline was not
 *   fully printed and is left out)
 */
export async function runUntilKilled(
  script: string,
  args: string[],
  killAfter: number,
): Promise<string[]> {
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--config", config, script, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const decoder = new TextDecoder();
  let text = "";
  let killed = false;
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    if (!killed && text.split("\n").length - 1 >= killAfter) {
      child.kill("SIGKILL");
      killed = true;
    }
  }
  const status = await child.status;
  if (status.signal !== "SIGKILL") {
    throw new Error(`the child was not killed: it exited with ${status.code}`);
  }
  const lines = text.split("\n");
  lines.pop();
  return lines;
}
