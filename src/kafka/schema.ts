/**
 * Message schemas as small tables, and one reader/writer that interprets them for any
 * version: a field lists its type and the versions it exists in (Kafka's
 * `clients/src/main/resources/common/message/*.json` describes the same fields). A field
 * outside the version is skipped and reads as its default. From the message's first
 * flexible version on, strings, bytes and arrays use compact lengths and every struct ends
 * with a tagged-field section (tags are skipped on read and written empty).
 *
 * @example
 * ```ts
 * const Heartbeat = message(4, [f("groupId", "str"), f("generationId", "i32"), f("memberId", "str")]);
 * const req = decode(Heartbeat, 3, new Reader(bytes));
 * ```
 *
 * @module
 */
import { KafkaDecodeError, type Reader, type Writer } from "./wire.ts";

/** A primitive field type. */
export type Prim =
  | "i8"
  | "i16"
  | "i32"
  | "i64"
  | "bool"
  | "str"
  | "nstr"
  | "bytes"
  | "nbytes"
  | "uuid";

/** A field: a primitive, an array of primitives, or an array of structs. */
export interface Field {
  /** the property name */
  name: string;
  /** the type; a Field[] is an array of structs */
  type: Prim | `[${Prim}]` | Field[];
  /** the first version holding it */
  min: number;
  /** the last version holding it */
  max: number;
  /** value when absent from the version (default: 0, false, "", null or []) */
  def?: unknown;
}

/** A message: its fields and its first flexible version (Infinity: none). */
export interface Message {
  /** the fields */
  fields: Field[];
  /** the first flexible version */
  flexible: number;
}

/**
 * A field.
 *
 * @param name the property name
 * @param type the type
 * @param versions "N+" or "N-M" (default "0+")
 * @param def the value when absent
 * @returns the field
 */
export function f(
  name: string,
  type: Field["type"],
  versions = "0+",
  def?: unknown,
): Field {
  const m = /^(\d+)(?:\+|-(\d+))?$/.exec(versions);
  if (!m) throw new Error(`bad versions "${versions}"`);
  const min = Number(m[1]);
  const max = m[2] !== undefined ? Number(m[2]) : versions.endsWith("+") ? 0x7fff : min;
  return { name, type, min, max, def };
}

/**
 * A message.
 *
 * @param flexible the first flexible version (Infinity for none)
 * @param fields the fields
 * @returns the message
 */
export function message(flexible: number, fields: Field[]): Message {
  return { flexible, fields };
}

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

function zero(field: Field): unknown {
  if (field.def !== undefined) return field.def;
  const t = field.type;
  if (Array.isArray(t) || t.startsWith("[")) return [];
  switch (t) {
    case "bool":
      return false;
    case "str":
      return "";
    case "nstr":
    case "bytes":
    case "nbytes":
    case "uuid":
      return null;
    default:
      return 0;
  }
}

function readPrim(r: Reader, t: Prim, compact: boolean): unknown {
  switch (t) {
    case "i8":
      return r.int8();
    case "i16":
      return r.int16();
    case "i32":
      return r.int32();
    case "i64":
      return r.int64();
    case "bool":
      return r.bool();
    case "uuid":
      return r.uuid();
    case "str": {
      const s = r.string(compact);
      if (s === null) throw new KafkaDecodeError("a non-nullable string is null");
      return s;
    }
    case "nstr":
      return r.string(compact);
    case "bytes":
    case "nbytes":
      return r.bytes(compact);
  }
}

function writePrim(w: Writer, t: Prim, v: unknown, compact: boolean): void {
  switch (t) {
    case "i8":
      w.int8(v as number);
      return;
    case "i16":
      w.int16(v as number);
      return;
    case "i32":
      w.int32(v as number);
      return;
    case "i64":
      w.int64(v as number);
      return;
    case "bool":
      w.bool(v as boolean);
      return;
    case "uuid":
      w.uuid(v as Uint8Array | null);
      return;
    case "str":
    case "nstr":
      w.string((v ?? (t === "str" ? "" : null)) as string | null, compact);
      return;
    case "bytes":
    case "nbytes":
      w.bytes((v ?? (t === "bytes" ? new Uint8Array(0) : null)) as Uint8Array | null, compact);
      return;
  }
}

function readStruct(fields: Field[], version: number, r: Reader, compact: boolean): Obj {
  const out: Obj = {};
  for (const field of fields) {
    if (version < field.min || version > field.max) {
      out[field.name] = zero(field);
      continue;
    }
    const t = field.type;
    if (Array.isArray(t) || t.startsWith("[")) {
      const n = r.length(compact, true);
      if (n < 0) {
        out[field.name] = null;
        continue;
      }
      const items = new Array(n);
      for (let i = 0; i < n; i++) {
        items[i] = Array.isArray(t)
          ? readStruct(t, version, r, compact)
          : readPrim(r, t.slice(1, -1) as Prim, compact);
      }
      out[field.name] = items;
    } else out[field.name] = readPrim(r, t as Prim, compact);
  }
  if (compact) r.skipTags();
  return out;
}

function writeStruct(fields: Field[], version: number, w: Writer, v: Obj, compact: boolean) {
  for (const field of fields) {
    if (version < field.min || version > field.max) continue;
    const t = field.type;
    const given = v[field.name];
    const value = given === undefined ? zero(field) : given;
    if (Array.isArray(t) || t.startsWith("[")) {
      if (value === null) {
        w.length(-1, compact, true);
        continue;
      }
      const items = value as unknown[];
      w.length(items.length, compact, true);
      for (const item of items) {
        if (Array.isArray(t)) writeStruct(t, version, w, item as Obj, compact);
        else writePrim(w, t.slice(1, -1) as Prim, item, compact);
      }
    } else writePrim(w, t as Prim, value, compact);
  }
  if (compact) w.noTags();
}

/**
 * Decodes a message body.
 *
 * @param msg the schema
 * @param version the version
 * @param r the reader, at the body
 * @returns the body as a plain object
 * @throws {KafkaDecodeError} when the bytes do not fit the schema
 */
// deno-lint-ignore no-explicit-any
export function decode<T = any>(msg: Message, version: number, r: Reader): T {
  return readStruct(msg.fields, version, r, version >= msg.flexible) as T;
}

/**
 * Encodes a message body.
 *
 * @param msg the schema
 * @param version the version
 * @param w the writer
 * @param value the body (absent fields take their defaults)
 */
export function encode(msg: Message, version: number, w: Writer, value: Obj): void {
  writeStruct(msg.fields, version, w, value, version >= msg.flexible);
}
