/**
 * Stream tickets (src/http/auth.ts): with auth on, a browser's EventSource authenticates with
 * a short-lived ticket in the URL, obtained with the API key; the ticket reads one topic's
 * event streams and nothing else.
 */
import assert from "node:assert/strict";
import { openSecureBroker } from "./_secure_app.ts";
import { TICKET_MS } from "../../src/http/auth.ts";

const SSE = { accept: "text/event-stream" };

async function firstEvent(res: Response): Promise<string> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (let i = 0; i < 1000; i++) {
      const m = /(^|\n)data: (.*)\n/.exec(buf);
      if (m) return m[2];
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
    }
    throw new Error(`no event in ${JSON.stringify(buf)}`);
  } finally {
    await reader.cancel();
  }
}

Deno.test("stream tickets: POST with the key, stream the topic with ?ticket=, nothing else, for 60 s", async () => {
  let clock = Date.now();
  await using b = await openSecureBroker({ security: { now: () => clock } });
  await b.broker.createTopic({ name: "t", partitions: 2 });
  await b.broker.createTopic({ name: "other", partitions: 1 });
  const reader = await b.key("reader");
  await b.allow("reader", "topic", "t", "read");
  await b.call("POST", "/v1/topics/t/records", b.admin, {
    records: [{ value: "hello", partition: 1 }],
  });

  const issued = await b.call("POST", "/v1/auth/tickets", reader, { topic: "t" });
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  const { ticket, expiresMs } = issued.body;
  assert.match(ticket, /^rt_[A-Za-z0-9_-]{20,}$/);
  assert.ok(!ticket.includes(reader.split(".")[1]), "the key's secret is not in the ticket");
  assert.equal(expiresMs, clock + TICKET_MS);

  // The whole topic's stream, and one partition's.
  const all = await b.app.request(`/v1/topics/t/records?offset=earliest&ticket=${ticket}`, {
    headers: SSE,
  });
  assert.equal(all.status, 200);
  assert.equal(JSON.parse(await firstEvent(all)).value, "hello");
  const one = await b.app.request(`/v1/topics/t/partitions/1/records?offset=0&ticket=${ticket}`, {
    headers: SSE,
  });
  assert.equal(one.status, 200);
  assert.equal(JSON.parse(await firstEvent(one)).value, "hello");

  // Nothing else: another topic, a plain fetch, a produce, the admin API.
  for (
    const [method, path, headers] of [
      ["GET", `/v1/topics/other/records?ticket=${ticket}`, SSE],
      ["GET", `/v1/topics/t/partitions/0/records?offset=0&ticket=${ticket}`, {}],
      ["POST", `/v1/topics/t/records?ticket=${ticket}`, {}],
      ["GET", `/v1/auth/whoami?ticket=${ticket}`, {}],
      ["GET", `/v1/topics/t/records?ticket=rt_forged0000000000000000000000`, SSE],
    ] as const
  ) {
    const r = await b.app.request(path, { method, headers });
    assert.equal(r.status, 401, `${method} ${path}`);
    assert.equal((await r.json()).error.code, "UNAUTHENTICATED");
  }

  // No ticket for a topic the key may not read; bad requests.
  const denied = await b.call("POST", "/v1/auth/tickets", reader, { topic: "other" });
  assert.equal(denied.status, 403);
  assert.equal((await b.call("POST", "/v1/auth/tickets", undefined, { topic: "t" })).status, 401);
  assert.equal((await b.call("POST", "/v1/auth/tickets", reader, { topic: 5 })).status, 400);
  assert.equal(
    (await b.call("POST", "/v1/auth/tickets", reader, { topic: "t", x: 1 })).status,
    400,
  );

  // 60 s later the ticket starts no stream.
  clock += TICKET_MS + 1;
  const late = await b.app.request(`/v1/topics/t/records?ticket=${ticket}`, { headers: SSE });
  assert.equal(late.status, 401);
  await late.body?.cancel();
  assert.ok(b.audit.some((l) => l.includes("authentication_failed")), "refusals are audited");
});

Deno.test("stream tickets die with their key", async () => {
  await using b = await openSecureBroker();
  await b.broker.createTopic({ name: "t", partitions: 1 });
  const created = await b.call("POST", "/v1/auth/keys", b.admin, { principal: "reader" });
  await b.allow("reader", "topic", "t", "read");
  const { ticket } =
    (await b.call("POST", "/v1/auth/tickets", created.body.token, { topic: "t" })).body;
  const revoked = await b.call("DELETE", `/v1/auth/keys/${created.body.key.keyId}`, b.admin);
  assert.equal(revoked.status, 200);
  const r = await b.app.request(`/v1/topics/t/records?ticket=${ticket}`, { headers: SSE });
  assert.equal(r.status, 401);
  await r.body?.cancel();
});
