/**
 * Helpers of the consumer group tests: produce numbered records, an in-process member that
 * records what it handled and when partitions arrive, and a member run as a child process
 * (tests/_helpers/group_member_child.ts) whose stdout lines can be awaited.
 *
 * @module
 */
import { type Consumer, type ConsumerOptions, Rill } from "../../mod.ts";

const CHILD = new URL("../_helpers/group_member_child.ts", import.meta.url).pathname;

/** What one member handled. */
export interface Handled {
  partition: number;
  offset: number;
  value: string;
}

/**
 * Produces `perPartition` records to each partition, valued `p<partition>-<i>`.
 *
 * @param rill the client
 * @param topic the topic
 * @param partitions the partition count
 * @param perPartition records per partition
 * @param from the first index
 */
export async function produceNumbered(
  rill: Rill,
  topic: string,
  partitions: number,
  perPartition: number,
  from = 0,
): Promise<void> {
  const producer = rill.producer({ lingerMs: 0 });
  const messages = [];
  for (let p = 0; p < partitions; p++) {
    for (let i = from; i < from + perPartition; i++) {
      messages.push({ partition: p, value: `p${p}-${i}` });
    }
  }
  await producer.send({ topic, messages });
  await producer.disconnect();
}

/**
 * Rejects with a labelled error when `p` has not settled within `ms`: a hang guard (a wait
 * that never ends fails the test instead of holding CI), not an assertion of speed.
 *
 * @param p the promise
 * @param ms the give-up time
 * @param what what is awaited, for the error
 * @returns `p`'s outcome
 */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A waitable condition over a growing state. */
export class Watch {
  #waiters: { check: () => boolean; resolve: () => void }[] = [];

  /** Re-checks every waiter (call after each change). */
  changed(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  /**
   * Resolves once `check()` holds; rejects after `timeoutMs` with `what`.
   *
   * @param check the condition
   * @param what a description for the timeout error
   * @param timeoutMs the give-up time (a hang guard, not an assertion of speed)
   */
  until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.check !== check);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.push({
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

/** An in-process group member that records everything. */
export class Member {
  readonly consumer: Consumer;
  readonly handled: Handled[] = [];
  /** partitions currently held (by onAssigned/onRevoked) */
  readonly held = new Set<number>();
  /** events with their times */
  readonly events: { at: number; kind: "assigned" | "revoked"; partitions: number[] }[] = [];
  readonly watch: Watch;

  /**
   * @param rill the client
   * @param options consumer options (groupId…)
   * @param watch re-checked on every change (share one between members whose conditions
   *   span several of them)
   */
  constructor(rill: Rill, options: ConsumerOptions, watch = new Watch()) {
    this.watch = watch;
    this.consumer = rill.consumer({
      maxWaitMs: 500,
      ...options,
      onAssigned: (ps) => {
        for (const p of ps) this.held.add(p.partition);
        this.events.push({
          at: Date.now(),
          kind: "assigned",
          partitions: ps.map((p) => p.partition),
        });
        this.watch.changed();
      },
      onRevoked: (ps) => {
        for (const p of ps) this.held.delete(p.partition);
        this.events.push({
          at: Date.now(),
          kind: "revoked",
          partitions: ps.map((p) => p.partition),
        });
        this.watch.changed();
      },
    });
  }

  /**
   * Subscribes and runs with eachMessage.
   *
   * @param topic the topic
   * @param run extra run options
   */
  async start(
    topic: string,
    run: { autoCommitInterval?: number; autoCommitThreshold?: number } = {},
  ) {
    await this.consumer.subscribe({ topics: [topic], fromBeginning: true });
    await this.consumer.run({
      ...run,
      eachMessage: ({ partition, message }) => {
        this.handled.push({ partition, offset: message.offset, value: message.valueString()! });
        this.watch.changed();
      },
    });
  }
}

/** A member in a child process. */
export interface ChildMember extends AsyncDisposable {
  /** its stdout lines so far */
  lines: string[];
  /** resolves with the first line (from now on or already seen) matching `re` */
  line(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGKILL */
  kill(): void;
  /** resolves when it exited */
  exited: Promise<Deno.CommandStatus>;
}

/**
 * Starts `group_member_child.ts`.
 *
 * @param args broker URL, group, topic, session timeout, and options for the child
 * @returns the child
 */
export function startChild(
  args: { broker: string; group: string; topic: string; sessionMs: number; hangAt?: string },
): ChildMember {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      CHILD,
      args.broker,
      args.group,
      args.topic,
      String(args.sessionMs),
      args.hangAt ?? "",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  const watch = new Watch();
  const done = (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      watch.changed();
    }
  })();
  const exited = child.status.then(async (s) => {
    await done;
    return s;
  });
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  };
  return {
    lines,
    exited,
    kill,
    async line(re, timeoutMs = 30_000) {
      let found: string | undefined;
      await watch.until(
        () => (found = lines.find((l) => re.test(l))) !== undefined,
        `a child line ${re}`,
        timeoutMs,
      );
      return found!;
    },
    async [Symbol.asyncDispose]() {
      kill();
      await exited;
    },
  };
}
