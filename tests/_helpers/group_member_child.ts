/**
 * A consumer group member in its own process, for tests that SIGKILL a member:
 *
 * `deno run -A group_member_child.ts BROKER GROUP TOPIC SESSION_MS [HANG_AT]`
 *
 * Prints `assigned P,P…` / `revoked P,P…` on rebalances and `handled P O` for each record
 * (eachBatch, resolving each record). With `HANG_AT` = `P:O`, the handler never returns
 * once it has printed record O of partition P: the process is then "mid-batch" with
 * resolved but uncommitted records (commits happen after each batch, as kafkajs).
 *
 * @module
 */
import { Rill } from "../../mod.ts";

const [broker, groupId, topic, session, hangAt] = Deno.args;
const encoder = new TextEncoder();
const say = (line: string) => Deno.stdout.writeSync(encoder.encode(line + "\n"));
const parts = (ps: { partition: number }[]) => ps.map((p) => p.partition).sort().join(",");

const rill = new Rill({ brokers: [broker] });
const consumer = rill.consumer({
  groupId,
  sessionTimeoutMs: Number(session),
  maxWaitMs: 500,
  onAssigned: (ps) => {
    say(`assigned ${parts(ps)}`);
  },
  onRevoked: (ps) => {
    say(`revoked ${parts(ps)}`);
  },
});
await consumer.subscribe({ topics: [topic], fromBeginning: true });
await consumer.run({
  autoCommitThreshold: 1,
  eachBatch: async ({ batch, resolveOffset }) => {
    for (const m of batch.messages) {
      say(`handled ${batch.partition} ${m.offset}`);
      if (hangAt === `${batch.partition}:${m.offset}`) await new Promise(() => {});
      resolveOffset(m.offset);
    }
  },
});
say("running");
