/**
 * The floor of the Kafka benchmark's produce figures (bench/kafka_bench.ts), as its own
 * process so that its CPU is measured apart from the client's: the least a Kafka broker on
 * Deno does per produce request. It reads each frame off the TCP connection in place (no copy),
 * walks the Produce request's header fields to name the partitions in its answer (the
 * client matches answers to partitions) and writes that answer: no CRC check, no record
 * parsing, no storage, no offsets. ApiVersions and Metadata (one broker, itself, leading
 * every partition of any topic asked for) are answered so that clients get that far.
 *
 * ```sh
 * deno run -A bench/_kafka_floor_server.ts 4   # partitions per topic; prints "listening on <port>"
 * ```
 *
 * @module
 */
import { API, SCHEMAS } from "../src/kafka/messages.ts";
import { decode, encode } from "../src/kafka/schema.ts";
import { apiVersionsBody, SUPPORTED } from "../src/kafka/versions.ts";
import { Reader, Writer } from "../src/kafka/wire.ts";

const PARTITIONS = Number(Deno.args[0] ?? "4");
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (listener.addr as Deno.NetAddr).port;
console.log(`listening on ${port}`);

// deno-lint-ignore no-explicit-any
function answer(apiKey: number, version: number, r: Reader): Record<string, any> | null {
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
    case API.Produce:
      if (req.acks === 0) return null; // no answer is owed
      return {
        responses: (req.topicData as { name: string; partitionData: { index: number }[] }[]).map(
          (t) => ({
            name: t.name,
            partitionResponses: t.partitionData.map((p) => ({
              index: p.index,
              errorCode: 0,
              baseOffset: 0,
              recordErrors: [],
              errorMessage: null,
            })),
          }),
        ),
        throttleTimeMs: 0,
      };
    default:
      throw new Error(`the floor server does not answer API ${apiKey}`);
  }
}

async function serve(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
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
        const w = new Writer().int32(correlationId);
        if (apiKey === API.ApiVersions && range && version > range[1]) {
          encode(SCHEMAS[apiKey].res, 0, w, { ...apiVersionsBody(), errorCode: 35 });
        } else {
          const flexible = version >= SCHEMAS[apiKey].req.flexible;
          if (flexible) r.skipTags();
          const body = answer(apiKey, version, r);
          if (body === null) continue;
          if (flexible && apiKey !== API.ApiVersions) w.noTags();
          encode(SCHEMAS[apiKey].res, version, w, body);
        }
        for (const c of w.frame()) {
          let o = 0;
          while (o < c.length) o += await conn.write(c.subarray(o));
        }
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
