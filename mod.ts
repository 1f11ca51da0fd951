/**
 * Rill's client library: admin, producer and consumer over Rill's HTTP API. It uses only
 * `fetch`, so it runs in Deno, Deno Deploy, browsers and Node.
 *
 * @example
 * ```ts
 * import { Rill } from "./mod.ts";
 *
 * const rill = new Rill({ brokers: ["http://127.0.0.1:8092"] });
 * const producer = rill.producer();
 * await producer.send({ topic: "greetings", messages: [{ key: "a", value: "hello" }] });
 * ```
 *
 * @module
 */
export * from "./src/client/mod.ts";
export { type ErrorCode, RillError } from "./src/protocol/errors.ts";
export type { RecordHeader } from "./src/protocol/record_batch.ts";
export { COMPRESSION_TYPES, type CompressionType } from "./src/protocol/compression.ts";
export { partitionForKey } from "./src/protocol/murmur2.ts";
export {
  type Crc32cImplementation,
  crc32cImplementation,
  portableCrc32cReady,
} from "./src/protocol/crc32c.ts";
