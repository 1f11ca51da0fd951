/**
 * The floor of the Kafka benchmark's figures (bench/kafka_bench.ts), as its own process so
 * that its CPU is measured apart from the client's: the least a Kafka broker on Deno does.
 *
 * - Produce: it reads each frame off the TCP connection in place (no copy), walks the
 *   request's header fields to name the partitions in its answer (the client matches answers
 *   to partitions) and writes that answer: no CRC check, no record parsing, no storage (the
 *   floor of kcat's produce rate). Only `--keep` (the end-to-end floor) keeps the batches, in
 *   memory, with offsets, so that they can be fetched.
 * - The end-to-end floor of a kafkajs group consumer: with `--keep`, Fetch long-polls on
 *   those in-memory batches (woken by the produce), and the group APIs answer from memory:
 *   one member per group (it leads and gets the assignment it sent), OffsetCommit kept in a
 *   map and answered at once (no KV write, nothing durable), Heartbeat always fine.
 * - ApiVersions and Metadata (one broker, itself, leading every partition of any topic
 *   asked for) are answered so that clients get that far.
 *
 * Answers leave in request order per connection, as from a broker.
 *
 * ```sh
 * deno run -A bench/_kafka_floor_server.ts 4 [--keep]  # partitions per topic; prints "listening on <port>"
 * ```
 *
 * @module
 */
import { API, SCHEMAS } from "../src/kafka/messages.ts";
import { concatBytes } from "../src/protocol/bytes.ts";
import { decode, encode } from "../src/kafka/schema.ts";
import { apiVersionsBody, SUPPORTED } from "../src/kafka/versions.ts";
import { Reader, Writer } from "../src/kafka/wire.ts";

const PARTITIONS = Number(Deno.args[0] ?? "4");
const KEEP = Deno.args.includes("--keep");
/** BaseOffset at 0, lastOffsetDelta at 23 (RecordBatch v2). */
const LAST_OFFSET_DELTA = 23;

/** One partition's batches in memory (with `--keep`), and the fetches waiting for more. */
interface Log {
  batches: Uint8Array[];
  /** the base offset of each batch */
  bases: number[];
  end: number;
}
const logs = new Map<string, Log>();
let waiters: (() => void)[] = [];
const committed = new Map<string, number>();
let members = 0;

function logOf(topic: string, partition: number): Log {
  const k = `${topic}\u0000${partition}`;
  let l = logs.get(k);
  if (l === undefined) logs.set(k, l = { batches: [], bases: [], end: 0 });
  return l;
}

/** Keeps a copy of the produced batches, offsets assigned, and wakes waiting fetches. */
function keep(topic: string, partition: number, records: Uint8Array): number {
  const l = logOf(topic, partition);
  const base = l.end;
  let pos = 0;
  while (pos + 61 <= records.length) {
    const view = new DataView(records.buffer, records.byteOffset + pos);
    const size = view.getInt32(8) + 12;
    const batch = records.slice(pos, pos + size);
    const bv = new DataView(batch.buffer);
    bv.setBigInt64(0, BigInt(l.end));
    l.batches.push(batch);
    l.bases.push(l.end);
    l.end += bv.getInt32(LAST_OFFSET_DELTA) + 1;
    pos += size;
  }
  const woken = waiters;
  waiters = [];
  for (const w of woken) w();
  return base;
}

/** The batches from `offset` on, up to `maxBytes` (at least one batch). */
function read(topic: string, partition: number, offset: number, maxBytes: number): Uint8Array[] {
  const l = logOf(topic, partition);
  const out: Uint8Array[] = [];
  let bytes = 0;
  for (let i = 0; i < l.batches.length; i++) {
    const next = i + 1 < l.bases.length ? l.bases[i + 1] : l.end;
    if (next <= offset) continue;
    if (out.length > 0 && bytes + l.batches[i].length > maxBytes) break;
    out.push(l.batches[i]);
    bytes += l.batches[i].length;
  }
  return out;
}

interface FetchTopic {
  topic: string;
  partitions: { partition: number; fetchOffset: number; partitionMaxBytes: number }[];
}

// deno-lint-ignore no-explicit-any
async function fetchAnswer(req: any): Promise<Record<string, unknown>> {
  const deadline = performance.now() + req.maxWaitMs;
  for (;;) {
    let bytes = 0;
    const responses = (req.topics as FetchTopic[]).map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map((p) => {
        const parts = read(t.topic, p.partition, p.fetchOffset, p.partitionMaxBytes);
        const records = concatBytes(parts, parts.reduce((n, b) => n + b.length, 0));
        bytes += records.length;
        return {
          partitionIndex: p.partition,
          errorCode: 0,
          highWatermark: logOf(t.topic, p.partition).end,
          lastStableOffset: logOf(t.topic, p.partition).end,
          logStartOffset: 0,
          abortedTransactions: [],
          records,
        };
      }),
    }));
    const left = deadline - performance.now();
    if (bytes >= Math.max(1, req.minBytes) || left <= 0) {
      return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses };
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, left);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      waiters.push(done);
    });
  }
}
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (listener.addr as Deno.NetAddr).port;
console.log(`listening on ${port}`);

/**
 * The answer to one request, decoded at once (the frame's bytes are reused after the next
 * read: what is kept is copied first); null when none is owed.
 */
function answer(
  apiKey: number,
  version: number,
  r: Reader,
  // deno-lint-ignore no-explicit-any
): Record<string, any> | Promise<Record<string, any>> | null {
  // deno-lint-ignore no-explicit-any
  const req: any = decode(SCHEMAS[apiKey].req, version, r);
  switch (apiKey) {
    case API.ApiVersions:
      return apiVersionsBody();
    case API.Metadata:
      return {
        brokers: [{ nodeId: 0, host: "127.0.0.1", port, rack: null }],
        clusterId: "floor",
        controllerId: 0,
        topics: ((req.topics ?? []) as { name: string }[]).map((t) => ({
          errorCode: 0,
          name: t.name,
          isInternal: false,
          partitions: Array.from({ length: PARTITIONS }, (_, p) => ({
            errorCode: 0,
            partitionIndex: p,
            leaderId: 0,
            leaderEpoch: 0,
            replicaNodes: [0],
            isrNodes: [0],
            offlineReplicas: [],
          })),
        })),
      };
    case API.Produce: {
      const responses = (req.topicData as {
        name: string;
        partitionData: { index: number; records: Uint8Array | null }[];
      }[]).map((t) => ({
        name: t.name,
        partitionResponses: t.partitionData.map((p) => ({
          index: p.index,
          errorCode: 0,
          baseOffset: KEEP && p.records ? keep(t.name, p.index, p.records) : 0,
          recordErrors: [],
          errorMessage: null,
        })),
      }));
      if (req.acks === 0) return null; // no answer is owed
      return { responses, throttleTimeMs: 0 };
    }
    case API.Fetch:
      return fetchAnswer(req);
    case API.ListOffsets:
      return {
        throttleTimeMs: 0,
        topics: (req.topics as {
          name: string;
          partitions: { partitionIndex: number; timestamp: number }[];
        }[])
          .map((t) => ({
            name: t.name,
            partitions: t.partitions.map((p) => ({
              partitionIndex: p.partitionIndex,
              errorCode: 0,
              timestamp: -1,
              offset: p.timestamp === -2 ? 0 : logOf(t.name, p.partitionIndex).end,
              leaderEpoch: 0,
            })),
          })),
      };
    case API.FindCoordinator:
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        errorMessage: null,
        nodeId: 0,
        host: "127.0.0.1",
        port,
        coordinators: ((req.coordinatorKeys ?? []) as string[]).map((key) => ({
          key,
          nodeId: 0,
          host: "127.0.0.1",
          port,
          errorCode: 0,
          errorMessage: null,
        })),
      };
    case API.JoinGroup: {
      // One member per group: it leads, with its own metadata (copied: the frame is reused).
      const memberId = req.memberId || `member-${++members}`;
      const protocol = req.protocols[0];
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        generationId: 1,
        protocolType: req.protocolType,
        protocolName: protocol.name,
        leader: memberId,
        memberId,
        members: [{ memberId, groupInstanceId: null, metadata: protocol.metadata.slice() }],
      };
    }
    case API.SyncGroup: {
      const mine = (req.assignments as { memberId: string; assignment: Uint8Array }[])
        .find((a) => a.memberId === req.memberId);
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        protocolType: req.protocolType,
        protocolName: req.protocolName,
        assignment: mine ? mine.assignment.slice() : new Uint8Array(0),
      };
    }
    case API.Heartbeat:
      return { throttleTimeMs: 0, errorCode: 0 };
    case API.LeaveGroup:
      return { throttleTimeMs: 0, errorCode: 0, members: [] };
    case API.OffsetCommit: {
      const topics = req.topics as {
        name: string;
        partitions: { partitionIndex: number; committedOffset: number }[];
      }[];
      for (const t of topics) {
        for (const p of t.partitions) {
          committed.set(
            `${req.groupId}\u0000${t.name}\u0000${p.partitionIndex}`,
            p.committedOffset,
          );
        }
      }
      return {
        throttleTimeMs: 0,
        topics: topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: 0 })),
        })),
      };
    }
    case API.OffsetFetch:
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        topics: ((req.topics ?? []) as { name: string; partitionIndexes: number[] }[]).map((t) => ({
          name: t.name,
          partitions: t.partitionIndexes.map((p) => ({
            partitionIndex: p,
            committedOffset: committed.get(`${req.groupId}\u0000${t.name}\u0000${p}`) ?? -1,
            committedLeaderEpoch: -1,
            metadata: "",
            errorCode: 0,
          })),
        })),
      };
    default:
      throw new Error(`the floor server does not answer API ${apiKey}`);
  }
}

async function serve(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  // Answers in request order: behind a pending long poll, the next ones wait for it.
  let ordered: Promise<void> = Promise.resolve();
  const write = async (w: Writer) => {
    for (const c of w.frame()) {
      let o = 0;
      while (o < c.length) o += await conn.write(c.subarray(o));
    }
  };
  const send = (w: Writer) => ordered = ordered.then(() => write(w));
  let buf = new Uint8Array(4 << 20);
  let start = 0, end = 0;
  try {
    for (;;) {
      while (end - start >= 4) {
        const view = new DataView(buf.buffer, start);
        const size = view.getInt32(0);
        if (end - start - 4 < size) break;
        const r = new Reader(buf.subarray(start + 4, start + 4 + size));
        start += 4 + size; // the frame is read in place; the buffer is not reused before the next read
        const apiKey = r.int16(), version = r.int16(), correlationId = r.int32();
        r.string(false);
        const range = SUPPORTED.get(apiKey);
        if (apiKey === API.ApiVersions && range && version > range[1]) {
          const w = new Writer().int32(correlationId);
          encode(SCHEMAS[apiKey].res, 0, w, { ...apiVersionsBody(), errorCode: 35 });
          await send(w);
          continue;
        }
        const flexible = version >= SCHEMAS[apiKey].req.flexible;
        if (flexible) r.skipTags();
        const body = answer(apiKey, version, r);
        if (body === null) continue;
        const encoded = (b: Record<string, unknown>) => {
          const w = new Writer().int32(correlationId);
          if (flexible && apiKey !== API.ApiVersions) w.noTags();
          encode(SCHEMAS[apiKey].res, version, w, b);
          return w;
        };
        if (body instanceof Promise) {
          // A long poll: the answers behind it wait for it (request order).
          const w = body.then(encoded);
          ordered = ordered.then(async () => await write(await w));
        } else await send(encoded(body));
      }
      if (start === end) start = end = 0;
      else if (end === buf.length && start > 0) {
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      if (end === buf.length) {
        const next = new Uint8Array(buf.length * 2);
        next.set(buf);
        buf = next;
      }
      const n = await conn.read(buf.subarray(end));
      if (n === null) return;
      end += n;
    }
  } catch {
    // the peer went away
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

for await (const conn of listener) serve(conn);
