/**
 * Contenders that take turns: worker processes (bench/_clients_worker.ts with `turns`) that
 * start and warm up once, then run their workload in turns the bench asks for, one contender
 * after the other, so that every contender meets the shared machine's changing load in many
 * slices rather than in a few long phases of fresh processes (see clients_bench.ts, workloads
 * 1 and 3).
 *
 * @module
 */
import { type Measured, WORKER_FLAGS, type WorkerResult } from "./_clients_common.ts";

const WORKER = new URL("./_clients_worker.ts", import.meta.url).pathname;

/** What one turn measured. */
export interface Turn {
  records: number;
  seconds: number;
  cpuMs: number;
  serverCpuMs: number;
  /** the turn's latency percentiles, ms */
  p50: number;
  p99: number;
}

/** A worker process that runs its round trips in turns. */
export class TurnWorker {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #buffered = "";
  #last = "";

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#stdin = child.stdin.getWriter();
  }

  /**
   * Starts a worker and waits until it has warmed up.
   *
   * @param settings the worker's settings (`turns` is added)
   * @returns the worker, ready for its first turn
   */
  static async start(settings: Record<string, unknown>): Promise<TurnWorker> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...WORKER_FLAGS, WORKER, JSON.stringify({ ...settings, turns: true })],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const w = new TurnWorker(child);
    const ready = await w.#line();
    if (!("ready" in ready)) throw new Error(`worker ${JSON.stringify(settings)}: ${w.#last}`);
    return w;
  }

  async #line(): Promise<Record<string, unknown>> {
    let nl: number;
    while ((nl = this.#buffered.indexOf("\n")) < 0) {
      const { value, done } = await this.#lines.read();
      if (done) throw new Error(`a turn worker exited: ${this.#buffered || this.#last}`);
      this.#buffered += value;
    }
    this.#last = this.#buffered.slice(0, nl).trim();
    this.#buffered = this.#buffered.slice(nl + 1);
    return JSON.parse(this.#last);
  }

  /**
   * Runs one turn.
   *
   * @param ms its length
   * @param counted false for a turn left out of the totals (the first round)
   * @returns what it measured
   */
  async turn(ms: number, counted: boolean): Promise<Turn> {
    await this.#stdin.write(new TextEncoder().encode(`run ${ms} ${counted ? 1 : 0}\n`));
    const answer = await this.#line();
    if (!("turn" in answer)) throw new Error(`a turn worker answered ${this.#last}`);
    return answer.turn as Turn;
  }

  /**
   * Ends the worker.
   *
   * @returns its totals over the counted turns (percentiles over all their round trips)
   */
  async end(): Promise<WorkerResult> {
    await this.#stdin.write(new TextEncoder().encode("end\n"));
    await this.#stdin.close();
    const result = await this.#line();
    const status = await this.#child.status;
    if (!status.success) throw new Error(`a turn worker failed: ${this.#last}`);
    return result as unknown as WorkerResult;
  }
}

/**
 * Contenders taking turns ({@linkcode TurnWorker}s): each started and warmed up in turn,
 * then `rounds` rounds of a `turnMs` turn each, forward in even rounds and backward in odd
 * ones, after `warmRounds` uncounted rounds. Returns each contender's counted turns as
 * per-round figures: the turn's rate, and its percentiles and CPU per record, or with
 * `pooled` those over all its counted turns.
 */
export async function takeTurns<K extends string>(
  contenders: [K, Record<string, unknown>][],
  rounds: number,
  turnMs: number,
  warmRounds: number,
  pooled = false,
): Promise<Record<K, Measured[]>> {
  const workers = new Map<K, TurnWorker>();
  const out = Object.fromEntries(contenders.map(([n]) => [n, [] as Measured[]])) as Record<
    K,
    Measured[]
  >;
  try {
    for (const [name, settings] of contenders) {
      workers.set(name, await TurnWorker.start(settings));
    }
    const order = contenders.map(([n]) => n);
    const turns = Object.fromEntries(order.map((n) => [n, [] as Turn[]])) as Record<K, Turn[]>;
    for (let round = -warmRounds; round < rounds; round++) {
      for (const name of (round & 1) === 0 ? order : [...order].reverse()) {
        const turn = await workers.get(name)!.turn(turnMs, round >= 0);
        if (round >= 0) turns[name].push(turn);
      }
    }
    for (const name of order) {
      const total = await workers.get(name)!.end();
      workers.delete(name);
      const perRecord = (ms: number, records: number) => ms * 1000 / Math.max(1, records);
      out[name] = turns[name].map((t) =>
        pooled
          ? {
            ...total,
            rate: t.records / t.seconds,
            serverUs: perRecord(total.serverCpuMs ?? 0, total.records),
            clientUs: perRecord(total.cpuMs, total.records),
          }
          : {
            ...total,
            records: t.records,
            seconds: t.seconds,
            rate: t.records / t.seconds,
            p50: t.p50,
            p99: t.p99,
            cpuMs: t.cpuMs,
            serverCpuMs: t.serverCpuMs,
            serverUs: perRecord(t.serverCpuMs, t.records),
            clientUs: perRecord(t.cpuMs, t.records),
          }
      );
    }
  } finally {
    for (const w of workers.values()) await w.end().catch(() => {});
  }
  return out;
}
