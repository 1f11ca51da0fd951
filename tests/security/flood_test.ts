/**
 * Abuse of a broker process: 2,000 connections holding long polls (the per-principal cap
 * turns most away with 429 at once) and a client streaming a 1 GiB chunked body (refused
 * once it passes the request limit, never buffered). The broker's memory stays bounded
 * (peak RSS from /proc/<pid>/status is printed) and it keeps serving other principals.
 */
import assert from "node:assert/strict";
import { AclStore } from "../../src/coordination/acls.ts";
import { ApiKeyStore } from "../../src/coordination/auth_keys.ts";
import { startBroker } from "../_helpers/broker_process.ts";

/** Open files this process may have (the broker inherits the same limit). */
function openFileLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(Deno.readTextFileSync("/proc/self/limits"));
  return m ? Number(m[1]) : 1024;
}

// 2,000 connections need ~2,100 descriptors on each side: CI should run with
// `ulimit -n 4096`; under a lower limit the flood shrinks to fit (and says so).
const CONNECTIONS = Math.min(2000, openFileLimit() - 200);
const PER_PRINCIPAL = 100;
const RSS_BOUND_MIB = 512;
const encoder = new TextEncoder();

async function memoryMiB(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1]);
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

/** Reads the status code of an HTTP/1.1 response on a raw connection (null if it closes). */
async function statusOf(conn: Deno.Conn): Promise<number | null> {
  const buf = new Uint8Array(1024);
  let text = "";
  for (let i = 0; i < 100; i++) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return null;
    text += new TextDecoder().decode(buf.subarray(0, n));
    const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
    if (m) return Number(m[1]);
  }
  return null;
}

Deno.test({
  name:
    "2,000 held long polls and a 1 GiB body: bounded memory, 429s, and the broker keeps serving",
  sanitizeResources: false, // sockets closed by the broker race the test's own closing
  async fn() {
    await using broker = await startBroker({
      extraArgs: ["--auth", "--max-streams-per-principal", String(PER_PRINCIPAL)],
    });
    const kv = await Deno.openKv(`${broker.dataDir}/meta.kv`);
    let admin: string, flooder: string;
    try {
      admin = (await new ApiKeyStore(kv).bootstrap()).token;
      flooder = (await new ApiKeyStore(kv).create({ principal: "flooder" })).token;
      const acls = new AclStore(kv);
      await acls.add({
        principal: "flooder",
        resourceType: "topic",
        patternType: "literal",
        resourceName: "*",
        operation: "all",
        permission: "allow",
      });
    } finally {
      kv.close();
    }
    const auth = (t: string) => ({
      authorization: `Bearer ${t}`,
      "content-type": "application/json",
    });
    const created = await fetch(`${broker.url}/v1/topics`, {
      method: "POST",
      headers: auth(admin),
      body: JSON.stringify({ name: "flood" }),
    });
    assert.equal(created.status, 201, await created.text());
    const { hostname, port } = new URL(broker.url);
    const before = await memoryMiB(broker.pid);

    // Step 1: the flood. Every connection asks for a 25 s long poll at the log end.
    const conns: Deno.Conn[] = [];
    const request = encoder.encode(
      `GET /v1/topics/flood/partitions/0/records?offset=0&maxWaitMs=25000 HTTP/1.1\r\n` +
        `Host: ${hostname}:${port}\r\nAuthorization: Bearer ${flooder}\r\n\r\n`,
    );
    const statuses: Promise<number | null>[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const conn = await Deno.connect({ hostname, port: Number(port) });
      conns.push(conn);
      for (let n = 0; n < request.length;) n += await conn.write(request.subarray(n));
      statuses.push(statusOf(conn));
    }
    // The refused ones answer at once; wait for them (the held ones stay pending).
    const answered: number[] = [];
    await Promise.race([
      Promise.all(statuses.map((p) => p.then((s) => s !== null && answered.push(s)))),
      (async () => {
        for (let i = 0; i < 300 && answered.length < CONNECTIONS - PER_PRINCIPAL; i++) {
          await new Promise((r) => setTimeout(r, 50));
        }
      })(),
    ]);
    const throttled = answered.filter((s) => s === 429).length;
    assert.equal(throttled, CONNECTIONS - PER_PRINCIPAL, `statuses: ${answered.length} answered`);

    // Others are still served during the flood.
    const health = await fetch(`${broker.url}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const produced = await fetch(`${broker.url}/v1/topics/flood/records`, {
      method: "POST",
      headers: auth(admin),
      body: JSON.stringify({ records: [{ value: "still serving" }] }),
    });
    assert.equal(produced.status, 200, await produced.text());
    const during = await memoryMiB(broker.pid);

    // The append wakes the held polls: they answer 200.
    const held = (await Promise.all(statuses)).filter((s) => s === 200).length;
    assert.equal(held, PER_PRINCIPAL);
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // closed by the broker already
      }
    }

    // Step 2: a 1 GiB chunked NDJSON body, generated on the fly.
    const conn = await Deno.connect({ hostname, port: Number(port) });
    await conn.write(encoder.encode(
      `POST /v1/topics/flood/records HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
        `Authorization: Bearer ${admin}\r\nContent-Type: application/x-ndjson\r\n` +
        `Transfer-Encoding: chunked\r\n\r\n`,
    ));
    const line = encoder.encode(`{"value":"${"x".repeat(1000)}"}\n`);
    const chunkBody = new Uint8Array(line.length * 64);
    for (let i = 0; i < 64; i++) chunkBody.set(line, i * line.length);
    const chunk = new Uint8Array([
      ...encoder.encode(`${chunkBody.length.toString(16)}\r\n`),
      ...chunkBody,
      ...encoder.encode("\r\n"),
    ]);
    const answer = statusOf(conn);
    let sent = 0;
    for (; sent < 1024 ** 3;) {
      try {
        for (let n = 0; n < chunk.length;) n += await conn.write(chunk.subarray(n));
      } catch {
        break; // the broker closed the connection after refusing the body
      }
      sent += chunkBody.length;
    }
    const status = await answer;
    try {
      conn.close();
    } catch {
      // already closed
    }
    assert.equal(status, 413, `sent ${sent} bytes; ${broker.stderr().slice(-3000)}`);
    const after = await memoryMiB(broker.pid);

    // Nothing of the refused body was appended; the broker still serves.
    const fetched = await fetch(`${broker.url}/v1/topics/flood/partitions/0/records?offset=0`, {
      headers: auth(admin),
    });
    const body = await fetched.json();
    assert.equal(body.highWatermark, 1, "only the one record produced during the flood");
    console.log(
      `${CONNECTIONS} connections. RSS MiB: before ${before.rss.toFixed(0)}, during the flood ${
        during.rss.toFixed(0)
      }, ` +
        `after the 1 GiB body ${after.rss.toFixed(0)} (${(sent / 2 ** 20).toFixed(0)} MiB sent, ` +
        `answered 413); peak ${after.peak.toFixed(0)}`,
    );
    assert.ok(after.peak < RSS_BOUND_MIB, `peak RSS ${after.peak.toFixed(0)} MiB`);
  },
});
