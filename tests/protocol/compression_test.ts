/**
 * The four Kafka codecs: round trips, byte compatibility with independent implementations
 * (node:zlib's native gzip and zstd, the reference `lz4` and `zstd` command-line tools),
 * and hostile input (truncated, mislabelled, bombs, header disagreement).
 */
import assert from "node:assert/strict";
import * as zlib from "node:zlib";
import fc from "fast-check";
import {
  CodecError,
  compressBatch,
  type CompressionType,
  decodeBatch,
  encodeBatch,
  inflateBatch,
  PORTABLE_CODECS,
  POS,
  prepareCompression,
  readBatchHeader,
  RillError,
  validateBatch,
} from "../../src/protocol/mod.ts";
import { crc32c } from "../../src/protocol/crc32c.ts";

const CODECS = ["gzip", "snappy", "lz4", "zstd"] as const;
const te = new TextEncoder();
const td = new TextDecoder();
await prepareCompression("zstd");

function logEvents(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    out.push(te.encode(JSON.stringify({
      ts: new Date(1_700_000_000_000 + i * 37).toISOString(),
      level: ["INFO", "WARN", "ERROR"][i % 3],
      service: `svc-${i % 7}`,
      message: `request ${i} handled in ${(i * 7919) % 1000} ms`,
    })));
  }
  return out;
}

/** Runs a reference tool on `input` (through files, as the tools read them). */
async function tool(cmd: string, args: string[], input: Uint8Array): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/in`, input);
    const out = await new Deno.Command(cmd, {
      args: [...args, "-c", `${dir}/in`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, `${cmd} ${args.join(" ")}: ${td.decode(out.stderr)}`);
    return out.stdout;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function haveTool(cmd: string): boolean {
  try {
    new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof RillError) return `${e.code}: ${e.message}`;
    throw e;
  }
  return "no error";
}

Deno.test("each codec round-trips any bytes, and JSON shrinks", () => {
  for (const name of CODECS) {
    const codec = PORTABLE_CODECS[name];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000 }), (bytes) => {
        assert.deepEqual(codec.decompress(codec.compress(bytes), bytes.length), bytes);
      }),
      { numRuns: 30 },
    );
    const json = te.encode(logEvents(2000).map((b) => td.decode(b)).join("\n"));
    const packed = codec.compress(json);
    assert.ok(packed.length < json.length / 3, `${name}: ${packed.length} of ${json.length}`);
    assert.deepEqual(codec.decompress(packed, json.length), json);
  }
});

Deno.test("compressed batches decode to the same records as the uncompressed batch", () => {
  const values = logEvents(300);
  const plain = encodeBatch(
    values.map((value, i) => ({
      key: te.encode(`k${i % 10}`),
      value,
      headers: [{ key: "h", value: te.encode(String(i)) }],
      timestamp: 1_700_000_000_000 + i,
    })),
    { producerId: 7, producerEpoch: 1, baseSequence: 5 },
  );
  const expected = decodeBatch(plain, true).records;
  for (const name of CODECS) {
    const batch = compressBatch(plain, name);
    const h = readBatchHeader(batch);
    assert.equal(h.attributes & 7, CODECS.indexOf(name) + 1);
    assert.equal(h.recordCount, 300);
    assert.equal(h.producerId, 7);
    assert.equal(h.baseSequence, 5);
    assert.ok(batch.length < plain.length / 3, `${name}: ${batch.length} of ${plain.length}`);
    const { header, records } = decodeBatch(batch, true);
    assert.equal(header.attributes & 7, CODECS.indexOf(name) + 1);
    assert.deepEqual(records, expected);
    const inflated = inflateBatch(batch);
    assert.equal(inflated.length, plain.length);
    assert.deepEqual(inflated.subarray(POS.records), plain.subarray(POS.records));
  }
});

Deno.test("gzip and zstd agree with node:zlib's native libraries both ways", () => {
  const json = te.encode(logEvents(3000).map((b) => td.decode(b)).join("\n"));
  const g = PORTABLE_CODECS.gzip;
  assert.deepEqual(new Uint8Array(zlib.gunzipSync(g.compress(json))), json);
  assert.deepEqual(g.decompress(zlib.gzipSync(json), json.length), json);
  const z = PORTABLE_CODECS.zstd;
  assert.deepEqual(new Uint8Array(zlib.zstdDecompressSync(z.compress(json))), json);
  assert.deepEqual(z.decompress(zlib.zstdCompressSync(json), 16 << 20), json);
});

Deno.test({
  name: "lz4 and zstd agree with the reference lz4 and zstd tools (linked blocks, checksums)",
  ignore: !haveTool("lz4") || !haveTool("zstd"),
  fn: async () => {
    const json = te.encode(logEvents(6000).map((b) => td.decode(b)).join("\n"));
    assert.ok(json.length > 300_000);
    const lz4 = PORTABLE_CODECS.lz4;
    assert.deepEqual(await tool("lz4", ["-d"], lz4.compress(json)), json);
    for (const flags of [["-BD"], ["-BI", "-B4"], ["-BD", "-BX", "--content-size"], ["-B7"]]) {
      const frame = await tool("lz4", flags, json);
      assert.deepEqual(lz4.decompress(frame, json.length), json, flags.join(" "));
    }
    const zstd = PORTABLE_CODECS.zstd;
    assert.deepEqual(await tool("zstd", ["-d"], zstd.compress(json)), json);
    // Without a content size too, as streaming writers such as zstd-jni write frames.
    for (const flags of [["-3"], ["-19", "--check"], ["-1", "--no-check", "--no-content-size"]]) {
      const frame = await tool("zstd", flags, json);
      assert.deepEqual(zstd.decompress(frame, 16 << 20), json, flags.join(" "));
    }
  },
});

Deno.test("snappy writes Kafka's xerial framing and reads raw snappy too", () => {
  const json = te.encode(logEvents(1000).map((b) => td.decode(b)).join("\n"));
  const framed = PORTABLE_CODECS.snappy.compress(json);
  assert.deepEqual(
    [...framed.subarray(0, 16)],
    [0x82, 83, 78, 65, 80, 80, 89, 0, 0, 0, 0, 1, 0, 0, 0, 1],
  );
  const view = new DataView(framed.buffer, framed.byteOffset);
  let pos = 16;
  let chunks = 0;
  while (pos < framed.length) {
    pos += 4 + view.getInt32(pos);
    chunks++;
  }
  assert.equal(pos, framed.length);
  assert.equal(chunks, Math.ceil(json.length / 32768));
  // One raw block, as kafkajs-snappy writes: the first xerial chunk is a raw block.
  const firstChunk = framed.subarray(20, 20 + view.getInt32(16));
  assert.deepEqual(
    PORTABLE_CODECS.snappy.decompress(firstChunk, 32768),
    json.subarray(0, 32768),
  );
});

function withCodecBits(batch: Uint8Array, bits: number): Uint8Array {
  const copy = batch.slice();
  const view = new DataView(copy.buffer);
  view.setInt16(POS.attributes, (view.getInt16(POS.attributes) & ~7) | bits);
  view.setUint32(POS.crc, crc32c(copy.subarray(POS.attributes)));
  return copy;
}

/** A batch whose records section is `body`, its length and CRC made right. */
function withBody(batch: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(POS.records + body.length);
  out.set(batch.subarray(0, POS.records));
  out.set(body, POS.records);
  const view = new DataView(out.buffer);
  view.setInt32(POS.batchLength, out.length - 12);
  view.setUint32(POS.crc, crc32c(out.subarray(POS.attributes)));
  return out;
}

Deno.test("hostile batches: wrong codec bits, truncated data, header disagreement", () => {
  const plain = encodeBatch(logEvents(50).map((value) => ({ value })));
  for (const name of CODECS) {
    const batch = compressBatch(plain, name);
    // Another codec's bits on these bytes.
    const other = CODECS[(CODECS.indexOf(name) + 1) % 4];
    assert.match(
      codeOf(() => validateBatch(withCodecBits(batch, CODECS.indexOf(other) + 1))),
      /^CORRUPT_MESSAGE: Batch at offset 0: /,
      `${name} bytes labelled ${other}`,
    );
    // Truncated compressed data (length and CRC made consistent, so only the codec sees it).
    const body = batch.subarray(POS.records);
    const cut = withBody(batch, body.subarray(0, body.length - 9));
    assert.match(codeOf(() => validateBatch(cut)), /^CORRUPT_MESSAGE/, `${name} truncated`);
    // The header says 51 records, the compressed records hold 50.
    const lying = batch.slice();
    const view = new DataView(lying.buffer);
    view.setInt32(POS.recordCount, 51);
    view.setInt32(POS.lastOffsetDelta, 50);
    view.setUint32(POS.crc, crc32c(lying.subarray(POS.attributes)));
    assert.match(codeOf(() => validateBatch(lying)), /^CORRUPT_MESSAGE/, `${name} count`);
  }
  assert.match(
    codeOf(() => validateBatch(withCodecBits(plain, 5))),
    /^UNSUPPORTED_COMPRESSION_TYPE: .*codec 5/,
  );
  assert.match(
    codeOf(() => validateBatch(withCodecBits(plain, 1))),
    /^CORRUPT_MESSAGE: Batch at offset 0: gzip/,
  );
});

/** A zstd frame of `blocks` RLE blocks of 128 KiB zeros, with no content size: 4 bytes each. */
function zstdRleBomb(blocks: number): Uint8Array {
  const out = new Uint8Array(6 + blocks * 4);
  new DataView(out.buffer).setUint32(0, 0xfd2fb528, true);
  out[4] = 0x00; // no content size, not single segment, no checksum
  out[5] = 7 << 3; // window 128 KiB
  for (let i = 0; i < blocks; i++) {
    const last = i === blocks - 1 ? 1 : 0;
    const h = last | (1 << 1) | ((128 * 1024) << 3);
    out[6 + i * 4] = h & 0xff;
    out[7 + i * 4] = (h >> 8) & 0xff;
    out[8 + i * 4] = (h >> 16) & 0xff;
    out[9 + i * 4] = 0;
  }
  return out;
}

Deno.test("decompression bombs are refused at the limit, whatever the codec", () => {
  const limit = 16 * 1024 * 1024;
  const zeros = new Uint8Array(48 * 1024 * 1024);
  const header = encodeBatch([{ value: null }]);
  const bombs: [CompressionType, Uint8Array][] = [
    ["gzip", new Uint8Array(zlib.gzipSync(zeros))],
    ["snappy", PORTABLE_CODECS.snappy.compress(zeros)],
    ["lz4", PORTABLE_CODECS.lz4.compress(zeros)],
    ["zstd", zstdRleBomb(8192)], // 1 GiB of zeros in 32 KiB
    ["zstd", new Uint8Array(zlib.zstdCompressSync(zeros))], // with a content size
  ];
  for (const [name, body] of bombs) {
    assert.ok(body.length < 3 * 1024 * 1024, `${name} bomb is ${body.length} bytes`);
    const batch = withCodecBits(
      withBody(header, body),
      ["gzip", "snappy", "lz4", "zstd"]
        .indexOf(name) + 1,
    );
    assert.match(
      codeOf(() => validateBatch(batch, limit)),
      /^RECORD_LIST_TOO_LARGE: Batch at offset 0 \(\w+, \d+ bytes\) inflates to more than 16777216 bytes/,
      name,
    );
  }
});

Deno.test("damaged compressed data never hangs or escapes the limit: a CodecError or bytes", () => {
  const json = te.encode(logEvents(400).map((b) => td.decode(b)).join("\n"));
  for (const name of CODECS) {
    const codec = PORTABLE_CODECS[name];
    const good = codec.compress(json);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.nat(),
        (flips, cut) => {
          const bad = good.slice(0, Math.max(1, good.length - (cut % 64)));
          for (const [at, byte] of flips) bad[at % bad.length] = byte;
          try {
            const out = codec.decompress(bad, json.length + 1024);
            assert.ok(out.length <= json.length + 1024, `${name}: ${out.length} bytes`);
          } catch (e) {
            assert.ok(e instanceof CodecError, `${name} threw ${e}`);
          }
        },
      ),
      { numRuns: 150 },
    );
  }
});
