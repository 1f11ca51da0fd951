/**
 * The floor of the produce benchmarks (bench/client_bench.ts): the least any broker built on
 * Deno's HTTP server can do per produced batch, with no Rill code but the storage engine and
 * the checksum. A bare `Deno.serve` (no Hono, no routing, no auth, no checks beyond the
 * batch CRC-32C) reads each `POST /{partition}` body chunk by chunk into one buffer, checks the CRC of the one batch
 * it holds, appends it to that partition's PartitionLog (default flush policy) and answers
 * its base offset as JSON. Run as its own process, so that it has its own thread as the
 * broker does:
 *
 * ```sh
 * deno run -A bench/_http_floor_server.ts <dataDir> <partitions>
 * # prints "listening on <port>", serves until killed
 * ```
 *
 * @module
 */
import { PartitionLog } from "../src/storage/mod.ts";
import { crc32c } from "../src/protocol/crc32c.ts";
import { concatBytes } from "../src/protocol/bytes.ts";
import { installNativeCrc32c } from "../src/protocol/native_crc32c.ts";
import { POS, readBatchHeader } from "../src/protocol/record_batch.ts";

const [dir, count] = Deno.args;
await installNativeCrc32c();
const logs = await Promise.all(
  Array.from({ length: Number(count) }, (_, p) => PartitionLog.open(`${dir}/p-${p}`)),
);

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`listening on ${port}`),
}, async (req) => {
  const log = logs[Number(new URL(req.url).pathname.slice(1))];
  const body = await readBody(req);
  if (!log || crc32c(body.subarray(POS.attributes)) !== readBatchHeader(body).crc) {
    return new Response("bad batch", { status: 400 });
  }
  const { baseOffset } = await log.append(body);
  return Response.json({ baseOffset });
});
await server.finished;

/** The body, read chunk by chunk (on Deno 2.9.6 faster than `req.bytes()`). */
async function readBody(req: Request): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of req.body!) {
    chunks.push(chunk);
    total += chunk.length;
  }
  return concatBytes(chunks, total);
}
