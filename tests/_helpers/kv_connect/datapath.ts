/**
 * The KV Connect data path messages (`com.deno.kv.datapath`, denokv's
 * `proto/schema/datapath.proto`), written out here with the same field numbers and types
 * for protobufjs to encode and decode at run time. Only the messages the endpoint reads or
 * writes are declared.
 *
 * @module
 */

import protobuf from "protobufjs";

const SCHEMA = `
syntax = "proto3";
package com.deno.kv.datapath;

message SnapshotRead { repeated ReadRange ranges = 1; }
message ReadRange { bytes start = 1; bytes end = 2; int32 limit = 3; bool reverse = 4; }
message SnapshotReadOutput {
  repeated ReadRangeOutput ranges = 1;
  bool read_disabled = 2;
  bool read_is_strongly_consistent = 4;
  SnapshotReadStatus status = 8;
}
enum SnapshotReadStatus { SR_UNSPECIFIED = 0; SR_SUCCESS = 1; SR_READ_DISABLED = 2; }
message ReadRangeOutput { repeated KvEntry values = 1; }

message AtomicWrite {
  repeated Check checks = 1;
  repeated Mutation mutations = 2;
  repeated Enqueue enqueues = 3;
}
message AtomicWriteOutput {
  AtomicWriteStatus status = 1;
  bytes versionstamp = 2;
  repeated uint32 failed_checks = 4;
}
message Check { bytes key = 1; bytes versionstamp = 2; }
message Mutation {
  bytes key = 1;
  KvValue value = 2;
  MutationType mutation_type = 3;
  int64 expire_at_ms = 4;
  bytes sum_min = 5;
  bytes sum_max = 6;
  bool sum_clamp = 7;
}
message KvValue { bytes data = 1; ValueEncoding encoding = 2; }
message KvEntry { bytes key = 1; bytes value = 2; ValueEncoding encoding = 3; bytes versionstamp = 4; }
enum MutationType {
  M_UNSPECIFIED = 0; M_SET = 1; M_DELETE = 2; M_SUM = 3; M_MAX = 4; M_MIN = 5;
  M_SET_SUFFIX_VERSIONSTAMPED_KEY = 9;
}
enum ValueEncoding { VE_UNSPECIFIED = 0; VE_V8 = 1; VE_LE64 = 2; VE_BYTES = 3; }
enum AtomicWriteStatus { AW_UNSPECIFIED = 0; AW_SUCCESS = 1; AW_CHECK_FAILURE = 2; AW_WRITE_DISABLED = 5; }
message Enqueue {
  bytes payload = 1;
  int64 deadline_ms = 2;
  repeated bytes keys_if_undelivered = 3;
  repeated uint32 backoff_schedule = 4;
}

message Watch { repeated WatchKey keys = 1; }
message WatchKey { bytes key = 1; }
message WatchOutput { SnapshotReadStatus status = 1; repeated WatchKeyOutput keys = 2; }
message WatchKeyOutput { bool changed = 1; KvEntry entry_if_changed = 2; }
`;

const root = protobuf.parse(SCHEMA, { keepCase: true }).root;
const type = (name: string) => root.lookupType(`com.deno.kv.datapath.${name}`);

/** Message types by name. */
export const Messages = {
  SnapshotRead: type("SnapshotRead"),
  SnapshotReadOutput: type("SnapshotReadOutput"),
  AtomicWrite: type("AtomicWrite"),
  AtomicWriteOutput: type("AtomicWriteOutput"),
  Watch: type("Watch"),
  WatchOutput: type("WatchOutput"),
};

/** `ValueEncoding` values. */
export const ValueEncoding = { V8: 1, LE64: 2, BYTES: 3 } as const;
/** `MutationType` values. */
export const MutationType = {
  SET: 1,
  DELETE: 2,
  SUM: 3,
  MAX: 4,
  MIN: 5,
  SET_SUFFIX_VERSIONSTAMPED_KEY: 9,
} as const;
/** `SnapshotReadStatus` values. */
export const ReadStatus = { SUCCESS: 1, READ_DISABLED: 2 } as const;
/** `AtomicWriteStatus` values. */
export const WriteStatus = { SUCCESS: 1, CHECK_FAILURE: 2, WRITE_DISABLED: 5 } as const;

/** A decoded `ReadRange`. */
export interface ReadRange {
  start: Uint8Array;
  end: Uint8Array;
  limit: number;
  reverse: boolean;
}
/** A `KvEntry` to encode. */
export interface KvEntryOut {
  key: Uint8Array;
  value: Uint8Array;
  encoding: number;
  versionstamp: Uint8Array;
}
/** A decoded `Mutation`. */
export interface MutationIn {
  key: Uint8Array;
  value?: { data: Uint8Array; encoding: number };
  mutation_type: number;
  expire_at_ms: number;
  sum_min: Uint8Array;
  sum_max: Uint8Array;
  sum_clamp: boolean;
}
/** A decoded `AtomicWrite`. */
export interface AtomicWriteIn {
  checks: { key: Uint8Array; versionstamp: Uint8Array }[];
  mutations: MutationIn[];
  enqueues: unknown[];
}

/**
 * Decodes a request body as the named message, with defaults filled in.
 *
 * @throws {Error} from protobufjs when the bytes are not that message
 */
export function decode<T>(message: protobuf.Type, bytes: Uint8Array): T {
  const decoded = message.decode(bytes);
  return message.toObject(decoded, { defaults: true, arrays: true, longs: Number }) as T;
}

/**
 * Encodes a plain object as the named message.
 *
 * @throws {Error} when the object does not fit the message
 */
export function encode(message: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  const problem = message.verify(value);
  if (problem) throw new Error(`Invalid ${message.name}: ${problem}`);
  return message.encode(message.fromObject(value)).finish();
}
