/**
 * Issue 14, D3 (and D4): a broker on a really full disk — a small tmpfs mounted for the test
 * (root only; the test says why it is skipped elsewhere). The free-space floor stops produce
 * before the disk is exhausted; when something else fills the disk, a topic can still be
 * deleted (the KV reserve gives the write its room), KV errors are a retriable
 * KAFKA_STORAGE_ERROR saying the disk is full, and the broker stays alive throughout.
 */
import assert from "node:assert/strict";
import { startBroker } from "../_helpers/broker_process.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { freeBytes } from "../../src/broker/disk_space.ts";

const MiB = 1024 * 1024;

async function mountTmpfs(mb: number): Promise<{ dir: string; reason?: string }> {
  const dir = await Deno.makeTempDir({ prefix: "rill-fulldisk-" });
  if (Deno.build.os !== "linux") return { dir, reason: "mounting a tmpfs needs Linux" };
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${mb}m`, "tmpfs", dir],
    stdout: "null",
    stderr: "piped",
  }).output().catch((e) => ({ success: false, stderr: new TextEncoder().encode(String(e)) }));
  if (!out.success) {
    return {
      dir,
      reason: `cannot mount a ${mb} MiB tmpfs (${
        new TextDecoder().decode(out.stderr).trim() || "not permitted"
      }); run as root to test a full disk`,
    };
  }
  return { dir };
}

async function unmount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: ["-l", dir], stdout: "null", stderr: "null" })
    .output().catch(() => {});
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** Writes zeros to `path` until the disk is full; returns the bytes written. */
async function fill(path: string): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true, append: true });
  const chunk = new Uint8Array(64 * 1024);
  let written = 0;
  try {
    for (;;) written += await file.write(chunk);
  } catch (e) {
    if (!/No space left|os error 28/.test(String(e))) throw e;
  } finally {
    file.close();
  }
  return written;
}

async function call(url: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body instanceof Uint8Array
      ? { "content-type": "application/vnd.rill.batch" }
      : { "content-type": "application/json" },
    body: body instanceof Uint8Array
      ? body as Uint8Array<ArrayBuffer>
      : body === undefined
      ? undefined
      : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? null : JSON.parse(text) };
}

const probe = await mountTmpfs(32);
if (probe.reason !== undefined) {
  console.warn(`full_disk_test.ts: SKIPPED: ${probe.reason}`);
}
await unmount(probe.dir);

Deno.test({
  name:
    "full disk: produce stops at the free-space floor; with the disk filled by others, a topic can still be deleted, KV errors say the disk is full, the broker stays alive",
  ignore: probe.reason !== undefined,
  async fn() {
    const { dir } = await mountTmpfs(32);
    try {
      const floor = 6 * MiB;
      await using broker = await startBroker({
        dataDir: `${dir}/data`,
        kvPath: `${dir}/meta.kv`,
        extraArgs: [
          "--min-free-bytes",
          String(floor),
          "--kv-reserve-bytes",
          String(2 * MiB),
          "--session-timeout-ms",
          "3000",
        ],
      });
      const url = broker.url;
      assert.equal((await call(url, "POST", "/v1/topics", { name: "fill" })).status, 201);
      assert.equal((await call(url, "POST", "/v1/topics", { name: "other" })).status, 201);

      // Produce 256 KiB batches until refused: the floor refuses before the disk is full.
      const batch = encodeBatch([{ value: new Uint8Array(256 * 1024 - 100) }]);
      let refused: { status: number; body: { error: Record<string, unknown> } } | null = null;
      for (let i = 0; i < 200 && refused === null; i++) {
        const res = await call(url, "POST", "/v1/topics/fill/records?partition=0&acks=1", batch);
        if (res.status !== 200) refused = res;
      }
      assert.ok(refused, "produce was refused before 50 MiB were written");
      assert.equal(refused.status, 500, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, "KAFKA_STORAGE_ERROR");
      assert.equal(refused.body.error.retriable, true);
      assert.match(String(refused.body.error.message), /min-free-bytes/);
      assert.ok(freeBytes(dir)! > 0, "the disk was not exhausted by produce");
      // Coordination still works: a topic can be created.
      assert.equal((await call(url, "POST", "/v1/topics", { name: "more" })).status, 201);

      // Now something else fills the disk to the last byte.
      await fill(`${dir}/filler`);
      assert.equal(freeBytes(dir), 0);
      // Deleting a topic still works (the KV write gets the reserve's room)…
      const del = await call(url, "DELETE", "/v1/topics/fill");
      assert.equal(del.status, 204, JSON.stringify(del.body));
      // …and its files are gone, which frees their space.
      await waitUntil(() => freeBytes(dir)! > 8 * MiB, "the deleted topic's space freed");

      // Filled again: a KV write gets a clear, retriable error that says the disk is full.
      // (Once there was room the broker wrote its reserve again; a write that finds the disk
      // full uses it up first, and then the disk is filled once more.)
      let create = { status: 0, body: null as { error: Record<string, unknown> } | null };
      for (let i = 0; i < 3 && create.status !== 500; i++) {
        await fill(`${dir}/filler`);
        create = await call(url, "POST", "/v1/topics", { name: `refused-${i}` });
      }
      assert.equal(create.status, 500, JSON.stringify(create.body));
      assert.equal(create.body!.error.code, "KAFKA_STORAGE_ERROR");
      assert.equal(create.body!.error.retriable, true);
      assert.match(String(create.body!.error.message), /disk .*is full/);

      // Space back: everything works again, and the broker was never declared dead.
      await Deno.remove(`${dir}/filler`);
      assert.equal((await call(url, "POST", "/v1/topics", { name: "after" })).status, 201);
      const produced = await call(url, "POST", "/v1/topics/after/records", {
        records: [{ value: "back" }],
      });
      assert.equal(produced.status, 200, JSON.stringify(produced.body));
      const cluster = await call(url, "GET", "/v1/cluster");
      assert.equal(cluster.body.brokers[0].alive, true);
      assert.doesNotMatch(broker.stderr(), /Unhandled error/);
    } finally {
      await unmount(dir);
    }
  },
});

async function waitUntil(cond: () => boolean, what: string): Promise<void> {
  // Space is freed by the broker's background deletion: no event reaches the test, so poll
  // (bounded).
  const deadline = Date.now() + 15_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name:
    "full disk: a log that failed on ENOSPC shows as failed, and takes writes again without a restart once space is back (reopened through recovery)",
  ignore: probe.reason !== undefined,
  async fn() {
    const { dir } = await mountTmpfs(32);
    try {
      await using broker = await startBroker({
        dataDir: `${dir}/data`,
        kvPath: `${dir}/meta.kv`,
        // No floor: the log itself runs into the full disk.
        extraArgs: ["--min-free-bytes", "0", "--kv-reserve-bytes", String(2 * MiB)],
      });
      const url = broker.url;
      assert.equal((await call(url, "POST", "/v1/topics", { name: "log" })).status, 201);
      // Something else takes most of the disk.
      const filler = await Deno.open(`${dir}/filler`, { write: true, create: true });
      await filler.write(new Uint8Array(22 * MiB));
      filler.close();
      const batch = encodeBatch([{ value: new Uint8Array(256 * 1024 - 100) }]);
      let acked = 0;
      let failed: { status: number; body: { error: Record<string, unknown> } } | null = null;
      for (let i = 0; i < 200 && failed === null; i++) {
        const res = await call(url, "POST", "/v1/topics/log/records?partition=0&acks=1", batch);
        if (res.status === 200) acked++;
        else failed = res;
      }
      assert.ok(failed, "the disk filled up");
      assert.equal(failed.body.error.code, "KAFKA_STORAGE_ERROR");
      assert.equal(failed.body.error.retriable, true);
      // The failure shows in the description (and in `rill topics describe`).
      const described = await call(url, "GET", "/v1/topics/log");
      assert.match(String(described.body.partitions[0].logFailure), /No space left on device/);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /rill_partition_log_failed\{[^}]*topic="log"[^}]*\} 1/);
      const again = await call(url, "POST", "/v1/topics/log/records?partition=0&acks=1", batch);
      assert.equal(again.status, 500, "still failed while the disk is full");

      // Space comes back: the log takes writes again, without a restart.
      await Deno.remove(`${dir}/filler`);
      let back = 0;
      for (let i = 0; i < 100 && back === 0; i++) {
        const res = await call(url, "POST", "/v1/topics/log/records?partition=0&acks=1", batch);
        if (res.status === 200) back = res.body.baseOffset + 1;
        else await new Promise((r) => setTimeout(r, 200)); // the broker reopens it in the background
      }
      assert.ok(back > 0, "produce works again once space is back");
      assert.equal(back, acked + 1, "every acknowledged record is kept, nothing else");
      const ok = await call(url, "GET", "/v1/topics/log");
      assert.equal(ok.body.partitions[0].logFailure, null);
      const after = await (await fetch(`${url}/metrics`)).text();
      assert.match(after, /rill_partition_log_failed\{[^}]*topic="log"[^}]*\} 0/);
      assert.match(broker.stderr(), /reopened log-0 through recovery/);
    } finally {
      await unmount(dir);
    }
  },
});
