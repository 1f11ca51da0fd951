/**
 * The schema tables and their interpreter: every request and response of every advertised
 * version round-trips (classic and flexible encodings), known bytes decode as Kafka
 * defines them, and a body cut short is a decode error, never a wrong value.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SCHEMAS } from "../../src/kafka/messages.ts";
import { decode, encode, type Field } from "../../src/kafka/schema.ts";
import { SUPPORTED } from "../../src/kafka/versions.ts";
import { KafkaDecodeError, Reader, Writer } from "../../src/kafka/wire.ts";

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Every field of `want` (recursively) is in `got` with the same value. */
function assertContains(got: unknown, want: unknown, where: string): void {
  if (Array.isArray(want)) {
    assert.ok(Array.isArray(got), where);
    assert.equal(got.length, want.length, where);
    want.forEach((w, i) => assertContains(got[i], w, `${where}[${i}]`));
  } else if (want !== null && typeof want === "object" && !(want instanceof Uint8Array)) {
    for (const [k, w] of Object.entries(want)) {
      assertContains((got as Record<string, unknown>)[k], w, `${where}.${k}`);
    }
  } else assert.deepEqual(got, want, where);
}

/** A value for every field present in `version` (deterministic, non-default). */
// deno-lint-ignore no-explicit-any
function sample(fields: Field[], version: number, seed: number): Record<string, any> {
  // deno-lint-ignore no-explicit-any
  const out: Record<string, any> = {};
  for (const [i, f] of fields.entries()) {
    if (version < f.min || version > f.max) continue;
    const n = (seed * 31 + i) % 9973;
    const prim = (t: string) => {
      switch (t) {
        case "i8":
          return n % 100;
        case "i16":
          return (n * 7) % 30000;
        case "i32":
          return n * 1001;
        case "i64":
          return n * 1_000_003_001;
        case "bool":
          return n % 2 === 0;
        case "str":
        case "nstr":
          return `s${n}-ü`;
        case "bytes":
        case "nbytes":
          return new Uint8Array([n & 0xff, 1, 2, 3]);
        default:
          return new Uint8Array(16).fill(n & 0xff); // uuid
      }
    };
    if (Array.isArray(f.type)) {
      out[f.name] = [sample(f.type, version, n), sample(f.type, version, n + 1)];
    } else if (f.type.startsWith("[")) {
      out[f.name] = [prim(f.type.slice(1, -1)), prim(f.type.slice(1, -1))];
    } else out[f.name] = prim(f.type);
  }
  return out;
}

Deno.test("every advertised version of every request and response round-trips", () => {
  let checked = 0;
  for (const [apiKey, [min, max]] of SUPPORTED) {
    for (let v = min; v <= max; v++) {
      for (const side of ["req", "res"] as const) {
        const msg = SCHEMAS[apiKey][side];
        const value = sample(msg.fields, v, apiKey * 100 + v);
        const w = new Writer();
        encode(msg, v, w, value);
        const bytes = concat(w.frame()).subarray(4);
        const r = new Reader(bytes);
        const back = decode(msg, v, r);
        assert.equal(r.remaining, 0, `api ${apiKey} v${v} ${side}: trailing bytes`);
        assertContains(back, value, `api ${apiKey} v${v} ${side}`);
        // cut short anywhere: a decode error, not a value
        for (const cut of [1, Math.floor(bytes.length / 2), bytes.length - 1]) {
          if (cut <= 0 || cut >= bytes.length) continue;
          assert.throws(() => decode(msg, v, new Reader(bytes.subarray(0, cut))), KafkaDecodeError);
        }
        checked++;
      }
    }
  }
  assert.ok(checked > 150);
});

Deno.test("known bytes: a librdkafka Fetch v11 request decodes field by field", () => {
  // As kcat 1.7.1 sent it (header stripped): replica -1, wait 500, min 1, max 52428800,
  // isolation 1, session 0/-1, topic "t1" partition 0 at offset 0, 1 MiB, no forgotten, rack "".
  const hex = "ffffffff000001f40000000103200000010000000" +
    "0ffffffff00000001000274310000000100000000ffffffff0000000000000000ffffffffffffffff00100000" +
    "000000000000";
  const bytes = new Uint8Array(hex.match(/../g)!.map((h) => parseInt(h, 16)));
  const r = new Reader(bytes);
  const req = decode(SCHEMAS[1].req, 11, r);
  assert.equal(r.remaining, 0);
  assert.equal(req.maxWaitMs, 500);
  assert.equal(req.maxBytes, 52428800);
  assert.equal(req.isolationLevel, 1);
  assert.equal(req.sessionEpoch, -1);
  assert.deepEqual(req.topics[0].topic, "t1");
  assert.deepEqual(req.topics[0].partitions[0], {
    partition: 0,
    currentLeaderEpoch: -1,
    fetchOffset: 0,
    lastFetchedEpoch: -1,
    logStartOffset: -1,
    partitionMaxBytes: 1048576,
  });
});

Deno.test("flexible encodings: compact lengths, null strings and arrays, tagged fields skipped", () => {
  const msg = SCHEMAS[3].req; // Metadata, flexible from v9
  const w = new Writer();
  encode(msg, 9, w, { topics: null, allowAutoTopicCreation: false });
  const bytes = concat(w.frame()).subarray(4);
  // topics null = uvarint 0; allowAutoTopicCreation; includeCluster/TopicAuthorizedOperations;
  // an empty tag section
  assert.deepEqual([...bytes], [0, 0, 0, 0, 0]);
  // an unknown tagged field (tag 5, 3 bytes) is skipped
  const tagged = new Uint8Array([0, 1, 0, 1, 1, 5, 3, 9, 9, 9]);
  const back = decode(msg, 9, new Reader(tagged));
  assert.equal(back.topics, null);
  assert.equal(back.allowAutoTopicCreation, true);
});
