/**
 * Delivery of fetched records to `run()`'s handlers (kafkajs's runner rules): `eachMessage`
 * one record at a time, `eachBatch` with `resolveOffset`; positions move past what the
 * handler finished, and in a group the resolved records count towards auto-commit.
 *
 * @module
 */
import { type Chunk, type PartitionFetches, TURN_RECORDS } from "./consumer_fetches.ts";
import type { GroupSession } from "./consumer_group_session.ts";
import type { Batch, RunOptions } from "./consumer_types.ts";

/** What delivery needs from its consumer. */
export interface DeliveryContext {
  /** the partitions (running, deliverable) */
  fetches: PartitionFetches;
  /** the group session, or null */
  group: GroupSession | null;
  /** marks a handler's synchronous part as running (see consumer_scope.ts) */
  inHandlerSync: (on: boolean) => void;
}

/**
 * Hands a chunk's records to `eachMessage`, one call at a time, moving the position past
 * each record whose call returned (and counting it for auto-commit in a group); stops when
 * the partition is moved, revoked or paused, or the consumer stops.
 *
 * @param c the consumer's side
 * @param chunk the fetched records
 * @param eachMessage the handler
 * @param heartbeat the payload's heartbeat()
 */
export async function deliverMessages(
  c: DeliveryContext,
  chunk: Chunk,
  eachMessage: NonNullable<RunOptions["eachMessage"]>,
  heartbeat: () => Promise<void>,
): Promise<void> {
  const { state, messages, epoch } = chunk;
  while (
    chunk.index < messages.length && state.epoch === epoch && c.fetches.running &&
    c.fetches.deliverable(state)
  ) {
    const message = messages[chunk.index];
    let called;
    c.inHandlerSync(true);
    try {
      called = eachMessage({
        topic: state.topic,
        partition: state.partition,
        message,
        heartbeat,
      });
    } finally {
      c.inHandlerSync(false);
    }
    // A handler that returned synchronously (not a promise) is not awaited: an await per
    // record is a promise and a microtask turn per delivery, the larger part of delivering a
    // record to such a handler. The loop's checks run after each call all the same.
    if (isThenable(called)) {
      await called;
      if (state.epoch !== epoch) return;
    } else if (state.epoch !== epoch) return;
    chunk.index++;
    state.position = message.offset + 1;
    if (c.group) {
      c.group.commits.resolved();
      if (c.group.commits.commitDue()) await c.group.commits.maybeCommit();
    }
    // Bounded work per partition per turn (fairness): the run loop gives the turn away.
    if (++chunk.turn >= TURN_RECORDS && c.fetches.othersWaiting(state)) return;
  }
}

/**
 * Hands the rest of a chunk to `eachBatch` with `resolveOffset`, `isStale` and the rest of
 * kafkajs's payload; after the call the batch is done (resolved whole with
 * `eachBatchAutoResolve`).
 *
 * @param c the consumer's side
 * @param chunk the fetched records
 * @param options the run options (eachBatch, eachBatchAutoResolve)
 * @param heartbeat the payload's heartbeat()
 */
export async function deliverBatch(
  c: DeliveryContext,
  chunk: Chunk,
  options: RunOptions,
  heartbeat: () => Promise<void>,
): Promise<void> {
  const { state, epoch } = chunk;
  const messages = chunk.index === 0 ? chunk.messages : chunk.messages.slice(chunk.index);
  const hw = chunk.highWatermark;
  const batch: Batch = {
    topic: state.topic,
    partition: state.partition,
    highWatermark: hw,
    messages,
    isEmpty: () => messages.length === 0,
    firstOffset: () => messages.length > 0 ? messages[0].offset : null,
    lastOffset: () => messages.length > 0 ? messages[messages.length - 1].offset : hw - 1,
    offsetLag: () =>
      Math.max(0, hw - 1 - (messages.length > 0 ? messages[messages.length - 1].offset : hw - 1)),
  };
  const resolveOffset = (offset: number) => {
    if (state.epoch !== epoch) return;
    let i = chunk.index;
    while (i < chunk.messages.length && chunk.messages[i].offset <= offset) i++;
    if (i > chunk.index) {
      c.group?.commits.resolved(i - chunk.index);
      chunk.index = i;
      state.position = chunk.messages[i - 1].offset + 1;
    }
  };
  let called;
  c.inHandlerSync(true);
  try {
    called = options.eachBatch!({
      batch,
      resolveOffset,
      heartbeat,
      isRunning: () => c.fetches.running,
      isStale: () => state.epoch !== epoch || !c.fetches.deliverable(state),
    });
  } finally {
    c.inHandlerSync(false);
  }
  await called;
  if (state.epoch !== epoch) return;
  if (options.eachBatchAutoResolve !== false && messages.length > 0) {
    resolveOffset(messages[messages.length - 1].offset);
  }
  // The handler returned: the batch is done even if not all of it was resolved (as in
  // kafkajs); the position stays at the last resolved record.
  chunk.index = chunk.messages.length;
}

/** Whether a handler's result is a promise (or any thenable) to await. */
function isThenable(x: unknown): x is PromiseLike<unknown> {
  return x !== null && (typeof x === "object" || typeof x === "function") &&
    typeof (x as { then?: unknown }).then === "function";
}
