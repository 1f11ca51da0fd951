/**
 * Quotas and limits through the HTTP API: URL and header sizes (414/431), request and byte
 * rates (429 THROTTLING_QUOTA_EXCEEDED with Retry-After, nothing applied), the cap on
 * long polls and SSE streams per principal and per broker, and the replica gate.
 */
import assert from "node:assert/strict";
import { TokenBucket } from "../../src/http/quotas.ts";
import { openTestBroker } from "../http/_app.ts";
import { createApp } from "../../src/http/app.ts";
import { type Answer, openSecureBroker } from "./_secure_app.ts";

function assertThrottled(res: Answer, what: string): void {
  assert.equal(res.status, 429, `${what}: ${JSON.stringify(res.body)}`);
  assert.equal(res.body.error.code, "THROTTLING_QUOTA_EXCEEDED", what);
  assert.equal(res.body.error.retriable, true);
  assert.match(res.headers.get("retry-after") ?? "", /^\d+$/, what);
}

Deno.test("a URL or headers over the limits are refused with 414 and 431", async () => {
  await using b = await openSecureBroker();
  const long = await b.call("GET", `/v1/topics/${"a".repeat(9000)}`, b.admin);
  assert.equal(long.status, 414);
  assert.equal(long.body.error.code, "INVALID_REQUEST");
  const fat = await b.call("GET", "/v1/topics", b.admin, undefined, { "x-pad": "p".repeat(17000) });
  assert.equal(fat.status, 431);
  assert.equal((await b.call("GET", "/v1/topics", b.admin)).status, 200);
});

Deno.test("the request rate quota throttles one principal, not the others", async () => {
  await using b = await openSecureBroker({ security: { quotas: { requestsPerSec: 3 } } });
  const other = await b.key("other");
  const res: Answer[] = [];
  for (let i = 0; i < 5; i++) res.push(await b.call("GET", "/v1/auth/whoami", b.admin));
  assert.equal(res[0].status, 200);
  assertThrottled(res[4], "fifth request within a second");
  assert.equal((await b.call("GET", "/v1/auth/whoami", other)).status, 200);
});

Deno.test("produce and fetch byte quotas throttle with Retry-After and append nothing", async () => {
  await using b = await openSecureBroker({
    security: { quotas: { produceBytesPerSec: 2000, fetchBytesPerSec: 2000 } },
  });
  await b.call("POST", "/v1/topics", b.admin, { name: "q" });
  const big = { records: [{ value: "v".repeat(3000) }] };
  assert.equal((await b.call("POST", "/v1/topics/q/records", b.admin, big)).status, 200);
  const second = await b.call("POST", "/v1/topics/q/records", b.admin, big);
  assertThrottled(second, "produce over the byte rate");
  const fetched = await b.call("GET", "/v1/topics/q/partitions/0/records?offset=0", b.admin);
  assert.equal(fetched.status, 200);
  assert.equal(fetched.body.records.length, 1, "the throttled produce appended nothing");
  assert.equal(fetched.body.highWatermark, 1);
  const again = await b.call("GET", "/v1/topics/q/partitions/0/records?offset=0", b.admin);
  assertThrottled(again, "fetch over the byte rate");
});

Deno.test("a chunked produce body without Content-Length is charged as it streams in", async () => {
  await using b = await openSecureBroker({ security: { quotas: { produceBytesPerSec: 2000 } } });
  await b.call("POST", "/v1/topics", b.admin, { name: "c" });
  const streamed = () => {
    const line = new TextEncoder().encode(`{"value":"${"v".repeat(1500)}"}\n`);
    return new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(line);
        c.enqueue(line);
        c.close();
      },
    });
  };
  const send = () =>
    b.app.request("/v1/topics/c/records", {
      method: "POST",
      headers: { authorization: `Bearer ${b.admin}`, "content-type": "application/x-ndjson" },
      body: streamed(),
      duplex: "half",
    } as RequestInit);
  const first = await send();
  assert.equal(first.status, 200, await first.text());
  const second = await send();
  assert.equal(second.status, 429, await second.text());
  assert.ok(Number(second.headers.get("retry-after")) >= 1);
});

Deno.test("long polls and SSE streams are capped per principal and released when they end", async () => {
  await using b = await openSecureBroker({
    security: { quotas: { maxStreamsPerPrincipal: 2, maxStreams: 10 } },
  });
  await b.call("POST", "/v1/topics", b.admin, { name: "lp" });
  const poll = (offset: number) =>
    `/v1/topics/lp/partitions/0/records?offset=${offset}&maxWaitMs=30000`;
  const user = await b.key("u");
  await b.allow("u", "topic", "lp", "read");
  // Three at once: whichever comes third finds two slots taken and is refused at once.
  const polls = [0, 1, 2].map(() => b.call("GET", poll(0), user));
  const first = await Promise.race(polls.map((p, i) => p.then((r) => ({ i, r }))));
  assertThrottled(first.r, "the user's third long poll");
  const held = polls.filter((_, i) => i !== first.i);
  // Another principal has its own allowance: an SSE stream takes one of the admin's slots.
  const sse = await b.app.request("/v1/topics/lp/partitions/0/records?offset=0", {
    headers: { authorization: `Bearer ${b.admin}`, accept: "text/event-stream" },
  });
  assert.equal(sse.status, 200);
  await b.call("POST", "/v1/topics/lp/records", b.admin, { records: [{ value: "wake" }] });
  for (const r of await Promise.all(held)) assert.equal(r.status, 200);
  const reader = sse.body!.getReader();
  assert.match(new TextDecoder().decode((await reader.read()).value), /"value":"wake"/);
  const pending = b.call("GET", poll(1), b.admin);
  assertThrottled(await b.call("GET", poll(0), b.admin), "the admin's third stream");
  await reader.cancel(); // the SSE stream ends: its slot is free again
  assert.equal((await b.call("GET", poll(0), b.admin)).status, 200);
  await b.call("POST", "/v1/topics/lp/records", b.admin, { records: [{ value: "w2" }] });
  assert.equal((await pending).status, 200);
});

Deno.test("with auth off the broker-wide cap holds every caller", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "g" });
  // openTestBroker's app has default limits; build one with a small global cap.
  const app = createApp(t.broker, { quotas: { maxStreams: 2 } });
  const poll = "/v1/topics/g/partitions/0/records?offset=0&maxWaitMs=30000";
  const held = [app.request(poll), app.request(poll)];
  const third = await app.request(poll);
  assert.equal(third.status, 429);
  assert.equal((await third.json()).error.code, "THROTTLING_QUOTA_EXCEEDED");
  await t.call("POST", "/v1/topics/g/records", { records: [{ value: "x" }] });
  for (const r of await Promise.all(held)) {
    assert.equal(r.status, 200);
    await r.body?.cancel();
  }
});

Deno.test("fetching as a replica needs the cluster secret or a superuser key", async (t) => {
  const secret = "0123456789abcdef-secret";
  await t.step("auth on", async () => {
    await using b = await openSecureBroker({ security: { clusterSecret: secret } });
    await b.call("POST", "/v1/topics", b.admin, { name: "r" });
    const reader = await b.key("reader");
    await b.allow("reader", "topic", "r", "read");
    const path = "/v1/topics/r/partitions/0/records?offset=0&replicaId=2";
    const outsider = await b.call("GET", path, reader);
    assert.equal(outsider.status, 403, JSON.stringify(outsider.body));
    assert.equal(outsider.body.error.code, "CLUSTER_AUTHORIZATION_FAILED");
    // A wrong cluster secret is a failed authentication, whatever key comes with it.
    const wrong = await b.call("GET", path, reader, undefined, { "rill-cluster-secret": "nope" });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, "UNAUTHENTICATED");
    // A follower needs no API key: the cluster secret alone makes it the broker principal.
    const follower = await b.call("GET", path, undefined, undefined, {
      "rill-cluster-secret": secret,
    });
    assert.notEqual(follower.status, 401);
    assert.notEqual(follower.body?.error?.code, "CLUSTER_AUTHORIZATION_FAILED");
    const epoch = await b.call(
      "GET",
      "/v1/topics/r/partitions/0/epoch-end-offset?epoch=0",
      undefined,
      undefined,
      { "rill-cluster-secret": secret },
    );
    assert.equal(epoch.status, 200, JSON.stringify(epoch.body));
    const outsiderEpoch = await b.call("GET", "/v1/topics/r/partitions/0/epoch-end-offset?epoch=0");
    assert.equal(outsiderEpoch.status, 401);
    // Past the gate, the replica path answers on its own terms (this broker has no follower 2).
    const trusted = await b.call("GET", path, reader, undefined, { "rill-cluster-secret": secret });
    assert.notEqual(trusted.body?.error?.code, "CLUSTER_AUTHORIZATION_FAILED");
    const su = await b.call("GET", path, b.admin);
    assert.notEqual(su.body?.error?.code, "CLUSTER_AUTHORIZATION_FAILED", "a superuser key may");
    assert.ok(b.audit.some((l) => JSON.parse(l).audit === "replica_denied"));
  });
  await t.step("auth off with a cluster secret", async () => {
    await using tb = await openTestBroker();
    await tb.call("POST", "/v1/topics", { name: "r" });
    const denials: string[] = [];
    const app = createApp(tb.broker, { clusterSecret: secret, audit: (l) => denials.push(l) });
    const path = "/v1/topics/r/partitions/0/records?offset=0&replicaId=2";
    assert.equal((await app.request(path)).status, 403);
    const ok = await app.request(path, { headers: { "rill-cluster-secret": secret } });
    assert.notEqual((await ok.json())?.error?.code, "CLUSTER_AUTHORIZATION_FAILED");
    assert.equal((await app.request(path.replace("&replicaId=2", ""))).status, 200);
    assert.equal(denials.length, 1, "the refused replica fetch is audited");
  });
});

Deno.test("TokenBucket goes into debt and says how long until it is positive", () => {
  let now = 0;
  const b = new TokenBucket(1000, () => now);
  assert.equal(b.waitMs(), 0);
  b.charge(1500);
  assert.ok(b.waitMs() >= 500 && b.waitMs() <= 502);
  now += 600;
  assert.equal(b.waitMs(), 0);
});

Deno.test("bodies being read at once are capped broker-wide: a crowd of slow uploads gets 429", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "up" });
  const app = createApp(t.broker, { quotas: { maxBodyBytesInFlight: 10_000 } });
  // A slow upload: declares 8,000 bytes and sends them only when told.
  let finish!: () => void;
  const sent = new Promise<void>((r) => finish = r);
  const slowBody = JSON.stringify({ records: [{ value: "s".repeat(7950) }] }).padEnd(8000, " ");
  const slow = app.request("/v1/topics/up/records", {
    method: "POST",
    headers: { "content-type": "application/json", "content-length": "8000" },
    body: new ReadableStream({
      async start(c) {
        await sent;
        c.enqueue(new TextEncoder().encode(slowBody));
        c.close();
      },
    }),
    duplex: "half",
  } as RequestInit);
  const small = JSON.stringify({ records: [{ value: "x".repeat(3000) }] });
  const crowded = await app.request("/v1/topics/up/records", {
    method: "POST",
    headers: { "content-type": "application/json", "content-length": String(small.length) },
    body: small,
  });
  assert.equal(crowded.status, 429, await crowded.text());
  assert.equal(crowded.headers.get("retry-after"), "1");
  finish();
  assert.equal((await slow).status, 200);
  const after = await app.request("/v1/topics/up/records", {
    method: "POST",
    headers: { "content-type": "application/json", "content-length": String(small.length) },
    body: small,
  });
  assert.equal(after.status, 200, "the reservation is returned when the slow upload ends");
});
