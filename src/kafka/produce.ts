/**
 * Produce (API 0): each partition's record batches go through the broker's one produce
 * path (`Broker.produceBatches`: CRC-32C, sizes, idempotent sequences, the compacted-topic
 * key rule, acks 0/1/all with min ISR), partitions of one request concurrently. acks=0 gets
 * no answer, as in Kafka. Errors are per partition, with the message from the broker.
 *
 * @module
 */
import type { Acks } from "../broker/broker.ts";
import { RillError } from "../protocol/errors.ts";
import { allowed, type KafkaContext, type Session } from "./context.ts";
import { KAFKA_ERROR, kafkaCode, kafkaMessage } from "./errors.ts";

interface PartitionData {
  index: number;
  records: Uint8Array | null;
}

/**
 * Produce.
 *
 * @param ctx the context
 * @param s the session
 * @param version the request version (v0–v2 are refused per partition)
 * @param req the decoded request
 * @returns the answer body, or null for acks=0
 */
export async function handleProduce(
  ctx: KafkaContext,
  s: Session,
  version: number,
  // deno-lint-ignore no-explicit-any
  req: any,
): Promise<Record<string, unknown> | null> {
  const acks = req.acks as number;
  const validAcks = acks === 0 || acks === 1 || acks === -1;
  const transactional = req.transactionalId !== null;
  const responses = await Promise.all(
    (req.topicData as { name: string; partitionData: PartitionData[] }[]).map(async (t) => {
      const mayWrite = allowed(ctx, s, { type: "topic", name: t.name }, "write");
      const partitionResponses = await Promise.all(t.partitionData.map(async (p) => {
        const fail = (errorCode: number, errorMessage: string) => ({
          index: p.index,
          errorCode,
          baseOffset: -1,
          logAppendTimeMs: -1,
          logStartOffset: -1,
          recordErrors: [],
          errorMessage,
        });
        if (!mayWrite) {
          return fail(
            KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED,
            `Not authorized to write topic "${t.name}"`,
          );
        }
        if (version < 3) {
          // Advertised only so that librdkafka < 2.11 compresses (versions.ts).
          return fail(
            KAFKA_ERROR.UNSUPPORTED_FOR_MESSAGE_FORMAT,
            `Produce v${version} carries message format v0/v1; Rill takes RecordBatch v2 (Produce v3+)`,
          );
        }
        if (!validAcks) {
          return fail(KAFKA_ERROR.INVALID_REQUIRED_ACKS, `acks must be 0, 1 or -1, got ${acks}`);
        }
        if (transactional) {
          return fail(
            KAFKA_ERROR.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            "Transactions are not supported",
          );
        }
        if (p.records === null || p.records.length === 0) {
          return fail(KAFKA_ERROR.INVALID_REQUEST, "A produce request must carry record batches");
        }
        try {
          const r = await ctx.broker.produceBatches(t.name, p.index, p.records, acks as Acks);
          return {
            index: p.index,
            errorCode: 0,
            baseOffset: r?.baseOffset ?? -1,
            logAppendTimeMs: r?.logAppendTime ?? -1,
            logStartOffset: -1,
            recordErrors: [],
            errorMessage: null,
          };
        } catch (e) {
          if (e instanceof RillError && e.code === "UNSUPPORTED_COMPRESSION_TYPE") {
            ctx.log(
              `kafka: refused a compressed batch for ${t.name}-${p.index} from ${s.peer} (${s.clientId}): ${e.message}`,
            );
          } else if (!(e instanceof RillError)) {
            ctx.log(`kafka: produce to ${t.name}-${p.index} failed: ${e}`);
          }
          return fail(kafkaCode(e), kafkaMessage(e));
        }
      }));
      return { name: t.name, partitionResponses };
    }),
  );
  if (acks === 0) return null;
  return { responses, throttleTimeMs: 0 };
}
