/**
 * The storage layer: segmented partition logs on local files.
 *
 * @module
 */
export * from "./partition_log.ts";
export { LogSegment, NO_TIMESTAMP } from "./segment.ts";
export { LogSegments } from "./segments.ts";
export { OffsetIndex } from "./offset_index.ts";
export { TimeIndex } from "./time_index.ts";
export * from "./checkpoint.ts";
export * from "./file_names.ts";
export * from "./leader_epoch_cache.ts";
export * from "./producer_state.ts";
export type { BatchHeaderFields, BatchPosition, ReadBuffer } from "./segment.ts";
