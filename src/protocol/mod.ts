/**
 * The protocol layer, shared by client and server: record batch codec, CRC-32C, varints,
 * Kafka's partitioner hash, the compression codecs and the error codes.
 *
 * @module
 */
export * from "./errors.ts";
export * from "./crc32c.ts";
export * from "./varint.ts";
export * from "./record_batch.ts";
export * from "./murmur2.ts";
export * from "./compression.ts";
