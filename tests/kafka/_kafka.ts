/**
 * Helpers for the Kafka listener tests: real client processes (kcat, python3 with
 * confluent-kafka) with awaitable output lines, and a check that a tool is installed (the
 * tests that need it are reported as ignored, with the reason printed, when it is not).
 *
 * @module
 */
import assert from "node:assert/strict";
import { cli } from "../_helpers/cli_in_process.ts";

/** Whether a command exists on PATH (or at an absolute path). */
export function hasCommand(cmd: string, args = ["--version"]): boolean {
  try {
    const out = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync();
    return out.success || out.code !== 127;
  } catch {
    return false;
  }
}

/** Whether Debian's python3-confluent-kafka is importable by /usr/bin/python3. */
export function hasConfluentKafka(): boolean {
  try {
    return new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import confluent_kafka"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

/** kcat is installed (Debian package `kcat`). */
export const KCAT = hasCommand("kcat", ["-V"]);
/** confluent-kafka for /usr/bin/python3 is installed (Debian `python3-confluent-kafka`). */
export const CONFLUENT = hasConfluentKafka();
if (!KCAT) console.error("kcat is not installed (apt-get install kcat): its tests are ignored");
if (!CONFLUENT) {
  console.error(
    "python3-confluent-kafka is not installed (apt-get install python3-confluent-kafka): its tests are ignored",
  );
}

/**
 * Runs a command to completion.
 *
 * @param cmd the command
 * @param args its arguments
 * @param opts stdin text and a timeout
 * @returns exit code, stdout and stderr
 */
export async function run(
  cmd: string,
  args: string[],
  opts: { stdin?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: opts.env,
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, opts.timeoutMs ?? 60_000);
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  clearTimeout(timer);
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** A running process whose stdout and stderr lines can be awaited. */
export interface Proc extends AsyncDisposable {
  /** every line so far (stdout and stderr interleaved as they came) */
  lines: string[];
  /** resolves with the first line (from now or earlier) for which `test` holds */
  waitLine(test: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** sends a signal */
  kill(signal?: Deno.Signal): void;
  /** the exit status */
  status: Promise<Deno.CommandStatus>;
  /** writes a line to its stdin (spawned with `stdin: true`) */
  writeLine(line: string): Promise<void>;
}

/**
 * Spawns a process with awaitable output lines.
 *
 * @param cmd the command
 * @param args its arguments
 * @param opts `stdin: true` to write to it
 * @returns the process
 */
export function spawn(cmd: string, args: string[], opts: { stdin?: boolean } = {}): Proc {
  const child = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let waiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  const pump = async (s: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        waiters = waiters.filter((w) => {
          if (!w.test(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    await pumped;
    return s;
  });
  const kill = (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch { /* gone */ }
  };
  const writer = opts.stdin ? child.stdin.getWriter() : null;
  return {
    lines,
    status,
    kill,
    async writeLine(line: string) {
      await writer!.write(new TextEncoder().encode(line + "\n"));
    },
    waitLine(test, timeoutMs = 60_000) {
      const found = lines.find(test);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w.resolve !== done);
          reject(new Error(`no such line within ${timeoutMs} ms; output:\n${lines.join("\n")}`));
        }, timeoutMs);
        const done = (l: string) => {
          clearTimeout(timer);
          resolve(l);
        };
        waiters.push({ test, resolve: done });
        status.then(() => {
          if (waiters.some((w) => w.resolve === done)) {
            clearTimeout(timer);
            reject(new Error(`exited before the line; output:\n${lines.join("\n")}`));
          }
        });
      });
    },
    async [Symbol.asyncDispose]() {
      kill("SIGKILL");
      await writer?.close().catch(() => {});
      await status;
    },
  };
}

/**
 * Creates a topic through the HTTP API.
 *
 * @param url the broker URL
 * @param name the topic
 * @param partitions its partition count
 * @param replicationFactor its replication factor
 */
export async function createTopic(
  url: string,
  name: string,
  partitions = 1,
  replicationFactor = 1,
): Promise<void> {
  const res = await fetch(`${url}/v1/topics`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, partitions, replicationFactor }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`create topic ${name}: ${res.status} ${text}`);
}

/** An API key token (`keyId.secret`) as SASL/PLAIN credentials: user = key id, password = secret. */
export function saslCredentials(token: string): { username: string; password: string } {
  const dot = token.indexOf(".");
  return { username: token.slice(0, dot), password: token.slice(dot + 1) };
}

/**
 * Bootstraps the first API key of an `--auth` broker (`rill auth bootstrap`).
 *
 * @param dataDir the broker's data directory
 * @returns the key's token (for HTTP) and its SASL/PLAIN credentials
 */
export async function bootstrapKey(
  dataDir: string,
): Promise<{ token: string; username: string; password: string }> {
  const boot = await cli("auth", "bootstrap", "--data", dataDir);
  assert.equal(boot.code, 0, boot.err);
  const token = boot.out.trim();
  return { token, ...saslCredentials(token) };
}
