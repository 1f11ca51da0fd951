/**
 * A real broker process for tests: `deno run -A cli.ts broker --listen 127.0.0.1:0 …`,
 * ready when it prints its `rill broker <id> listening on <url>` line (no sleeps).
 *
 * ```ts
 * await using broker = await startBroker();
 * await fetch(`${broker.url}/healthz`);
 * ```
 *
 * @module
 */

const REPO = new URL("../../", import.meta.url).pathname;

/** A checkout's directory, ending with a slash (this one by default). */
function repoDir(repo: string | undefined): string {
  if (repo === undefined) return REPO;
  return repo.endsWith("/") ? repo : `${repo}/`;
}
const READY = /^rill (?:broker|follower) (\d+) listening on (https?:\/\/\S+)$/;
const KAFKA_READY = /^rill (?:broker|follower) \d+ kafka listening on (\S+)/;

/** Options of {@linkcode startBroker}. */
export interface StartBrokerOptions {
  /** the data directory (default: a fresh temp dir, removed on dispose) */
  dataDir?: string;
  /** a KV path shared with other brokers (default: `<data>/meta.kv`) */
  kvPath?: string;
  /** the broker id (default 1) */
  id?: number;
  /** more command-line flags */
  extraArgs?: string[];
  /** "broker" (default) or "follower" */
  role?: "broker" | "follower";
  /** more environment variables (e.g. `DENO_KV_ACCESS_TOKEN` for a KV URL) */
  env?: Record<string, string>;
  /** the checkout whose cli.ts runs, with or without a trailing slash (default: this one;
   * benchmarks compare with another) */
  repo?: string;
  /** flags of `deno run` itself, before the script (e.g. `--cpu-prof` to profile it) */
  denoFlags?: string[];
}

/** A running broker process. */
export interface BrokerProcess extends AsyncDisposable {
  /** the URL it listens on */
  url: string;
  /** host:port of its Kafka listener, or null when it has none */
  kafka: string | null;
  /** its data directory */
  dataDir: string;
  /** its process id */
  pid: number;
  /** resolves with the exit status when the process ends */
  exited: Promise<Deno.CommandStatus>;
  /** everything it wrote to stderr so far */
  stderr(): string;
  /**
   * Sends a signal.
   *
   * @param signal e.g. "SIGKILL"
   */
  kill(signal?: Deno.Signal): void;
  /** SIGTERM, then waits for the exit; returns the status. */
  stop(): Promise<Deno.CommandStatus>;
}

/**
 * Spawns a broker process and waits until it is ready.
 *
 * @param opts data directory, KV, id and extra flags
 * @returns the running process
 * @throws {Error} with its stderr when it exits before it is ready
 */
export async function startBroker(opts: StartBrokerOptions = {}): Promise<BrokerProcess> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "rill-broker-" });
  const args = [
    "run",
    "-A",
    ...opts.denoFlags ?? [],
    `${repoDir(opts.repo)}cli.ts`,
    opts.role ?? "broker",
    "--listen",
    "127.0.0.1:0",
    "--data",
    dataDir,
    "--id",
    String(opts.id ?? 1),
  ];
  if (opts.kvPath) args.push("--kv", opts.kvPath);
  args.push(...opts.extraArgs ?? []);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: repoDir(opts.repo),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...opts.env },
  }).spawn();

  let errText = "";
  const errDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) errText += decoder.decode(chunk, { stream: true });
  })();

  // Read stdout line by line until the ready line; keep draining it afterwards.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let url: string | null = null;
  let kafka: string | null = null;
  // A broker that neither gets ready nor exits would hang the test: give up after a minute.
  let timedOut = false;
  const guard = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, 60_000);
  while (url === null) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0 && url === null) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      const m = READY.exec(line);
      if (m) url = m[2];
      const k = KAFKA_READY.exec(line);
      if (k) kafka = k[1];
    }
  }
  clearTimeout(guard);
  const outDone = (async () => {
    for (;;) {
      const { done } = await reader.read();
      if (done) return;
    }
  })();
  const exited = (async () => {
    const status = await child.status;
    await Promise.allSettled([errDone, outDone]);
    return status;
  })();

  if (url === null) {
    await exited;
    if (ownDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    throw new Error(
      `The broker ${
        timedOut ? "was not ready within 60 s" : "exited before it was ready"
      }:\n${errText}`,
    );
  }

  const kill = (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch (e) {
      // Already exited: nothing to signal.
      if (!(e instanceof TypeError) && !(e instanceof Deno.errors.NotFound)) throw e;
    }
  };
  return {
    url,
    kafka,
    dataDir,
    pid: child.pid,
    exited,
    stderr: () => errText,
    kill,
    async stop() {
      kill("SIGTERM");
      return await exited;
    },
    async [Symbol.asyncDispose]() {
      kill("SIGKILL");
      await exited;
      if (ownDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}
