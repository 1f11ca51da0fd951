/**
 * What the parts of the clients bench (clients_bench.ts, _clients_crowd.ts, _clients_redis.ts)
 * share: the suite's settings, the worker processes (_clients_worker.ts), the /proc figures of a
 * process and the figures of measured phases.
 *
 * @module
 */
export const SUITE = "clients";
export const SECONDS = Math.max(0.5, Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "3") || 3);
const WORKER = new URL("./_clients_worker.ts", import.meta.url).pathname;
export const HTTP_ONLY = Deno.env.get("RILL_CLIENTS_HTTP_ONLY") === "1";
/** Workload 1 runs turns for `ROUNDS` × `SECONDS` per contender (see clients_bench.ts). */
export const ROUNDS = 3;
/**
 * Workload 1: the length of each contender's turn, the warm-up of each worker before its
 * first turn, and the uncounted rounds of turns after it (the rest of the warm-up).
 */
export const TURN_MS = 250;
export const SEQ_WARM_MS = 1000;
export const SEQ_WARM_ROUNDS = 8;
/**
 * How long each end-to-end phase sends (uncounted) before its timed part: with 0.5 s, the
 * HTTP e2e p99 was 4.8-10 ms in alternating phases where 3 s gave 2.9-3.9 ms (p50 0.71-0.89
 * against 0.59-0.69): a fresh process was still warming up.
 */
export const E2E_WARM_MS = 3000;
/** Rounds of the end-to-end phases (`RILL_CLIENTS_E2E_ROUNDS`, default 3). */
export const E2E_ROUNDS = Math.max(1, Number(Deno.env.get("RILL_CLIENTS_E2E_ROUNDS") ?? "3") || 3);

/** What a worker process (_clients_worker.ts) prints at its end. */
export interface WorkerResult {
  records: number;
  errors: number;
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
  /** the worker's CPU over its timed phase (from the end of its warm-up) */
  cpuMs: number;
  /** the server's, likewise (given its `serverPid`) */
  serverCpuMs?: number;
}

/** A phase's result with the server's CPU over it. */
export interface Measured extends WorkerResult {
  /** server CPU µs per record */
  serverUs: number;
  /** client CPU µs per record */
  clientUs: number;
}

/** A process's CPU time (user + system) so far, in ms, from /proc. */
export function procCpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A process's resident memory now (VmRSS) or at its peak (VmHWM), in MiB, from /proc. */
export function procMemMiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/**
 * The `deno run` flags of a worker process: `--cpu-prof` into `RILL_CLIENTS_WORKER_PROF` when
 * it is set (a profile per worker, written as it exits), none otherwise.
 */
export const WORKER_FLAGS: string[] = Deno.env.get("RILL_CLIENTS_WORKER_PROF")
  ? ["--cpu-prof", `--cpu-prof-dir=${Deno.env.get("RILL_CLIENTS_WORKER_PROF")}`]
  : [];

/** Runs a worker process with `settings` and returns what it printed. */
export async function worker(
  settings: Record<string, unknown>,
  nice = 0,
): Promise<WorkerResult> {
  const args = ["run", "-A", ...WORKER_FLAGS, WORKER, JSON.stringify(settings)];
  // `nice`: the worker runs at that lower CPU priority (nice(1)), below the server's.
  const out = await new Deno.Command(nice > 0 ? "nice" : Deno.execPath(), {
    args: nice > 0 ? ["-n", String(nice), Deno.execPath(), ...args] : args,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (!out.success) throw new Error(`worker ${JSON.stringify(settings)} failed: ${text}`);
  return JSON.parse(text);
}

/** Each phase's or turn's records/s, server CPU µs per record, and latency percentiles (ms). */
export const rate = (xs: Measured[]) => xs.map((x) => x.rate);
export const serverUs = (xs: Measured[]) => xs.map((x) => x.serverUs);
export const p50s = (xs: Measured[]) => xs.map((x) => x.p50);
export const p99s = (xs: Measured[]) => xs.map((x) => x.p99);

/** The line printed after turns: each contender's p50 and p99 of each round, and the load. */
export function perRound(label: string, turns: Record<string, Measured[]>): string {
  const rounds = Object.entries(turns).map(([name, xs]) =>
    `${name} p50 ${xs.map((m) => fmt(m.p50)).join(" ")} p99 ${
      xs.map((m) => fmt(m.p99)).join(" ")
    } ms`
  );
  return `${SUITE}: ${label} per round: ${rounds.join("; ")}; ${loadText()}`;
}

/** Runs a worker against the server `pid` and adds the server's and the worker's CPU per record. */
export async function measured(pid: number, settings: Record<string, unknown>): Promise<Measured> {
  const c0 = procCpuMs(pid);
  const r = await worker({ ...settings, serverPid: pid });
  // From the end of the worker's warm-up where it has one (its CPU is not the workload's).
  const serverMs = r.serverCpuMs ?? procCpuMs(pid) - c0;
  return {
    ...r,
    serverUs: serverMs * 1000 / Math.max(1, r.records),
    clientUs: r.cpuMs * 1000 / Math.max(1, r.records),
  };
}

/** A figure with three significant digits (whole from 100). */
export const fmt = (n: number) => (n >= 100 ? Math.round(n).toString() : n.toPrecision(3));

/** The load average, as a unit text. */
export const loadText = () => `load average ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`;

/** A floor server: its URL and process id. */
export type Floor = { url: string; pid: number };
