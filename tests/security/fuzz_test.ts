/**
 * Fuzz (fast-check): random and malformed methods, paths, query strings, headers,
 * credentials and bodies thrown at every route of a broker process, with auth on and off.
 * No answer is a 5xx, the process does not crash, /healthz still answers, and the stored
 * data is what it was. Bounded: a few hundred requests.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ApiKeyStore } from "../../src/coordination/auth_keys.ts";
import { type BrokerProcess, startBroker } from "../_helpers/broker_process.ts";

const TEMPLATES = [
  "/v1/cluster",
  "/v1/topics",
  "/v1/topics/{t}",
  "/v1/topics/{t}/records",
  "/v1/topics/{t}/partitions/{p}/records",
  "/v1/topics/{t}/partitions/{p}/offsets",
  "/v1/topics/{t}/partitions/{p}/epoch-end-offset",
  "/v1/groups",
  "/v1/groups/{g}",
  "/v1/groups/{g}/members",
  "/v1/groups/{g}/members/{m}/heartbeat",
  "/v1/groups/{g}/members/{m}",
  "/v1/groups/{g}/offsets",
  "/v1/groups/{g}/offsets/reset",
  "/v1/producers",
  "/v1/producers/{p}",
  "/v1/auth/keys",
  "/v1/auth/keys/{m}",
  "/v1/auth/acls",
  "/v1/auth/bootstrap",
  "/v1/auth/whoami",
  "/healthz",
  "/{m}",
];

const segment = fc.oneof(
  fc.constantFrom("fz", "fzg", "0", "-1", "99999999999", "..", ".", "%00", "%2F", "a%ZZ", "é", ""),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.stringMatching(/^[a-zA-Z0-9._-]{1,20}$/),
);

const query = fc.array(
  fc.tuple(
    fc.oneof(
      fc.constantFrom(
        "offset",
        "maxBytes",
        "maxWaitMs",
        "minBytes",
        "at",
        "acks",
        "partition",
        "encoding",
        "replicaId",
        "leaderEpoch",
        "epoch",
        "id",
        "principal",
      ),
      fc.string({ maxLength: 10 }),
    ),
    fc.oneof(
      fc.constantFrom("0", "1", "-1", "all", "earliest", "latest", "base64", "1e3", "9".repeat(30)),
      fc.integer({ min: 0, max: 20 }).map(String), // long-poll waits stay short
      fc.string({ maxLength: 20 }),
    ),
  ),
  { maxLength: 4 },
).map((pairs) =>
  pairs.length === 0
    ? ""
    : "?" + pairs.map(([k, v]) =>
      `${encodeURIComponent(k)}=${
        k === "maxWaitMs" ? String(Math.min(20, Number(v) || 0)) : encodeURIComponent(v)
      }`
    ).join("&")
);

const body = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 200 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.uint8Array({ maxLength: 300 }),
  fc.constantFrom(
    '{"records":',
    '{"records":[{"value":1}]}',
    '{"records":[{"partition":-5,"value":"x"}]}',
    '{"name":""}',
    '{"topics":"fz"}',
    '{"offsets":[{"topic":"fz","partition":0,"offset":-3}]}',
    '{"generation":"x"}',
    '{"principal":"","resourceType":"nope"}',
    '{"token":"rb_nope"}',
    "\xff\xfe",
    "x".repeat(20_000),
  ),
);

const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/).filter((h) =>
  ![
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "authorization",
    "accept",
    "content-type",
    "expect",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
  ].includes(h)
);
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,60}$/);

function requestArb(credentials: string[]) {
  return fc.record({
    method: fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"),
    template: fc.constantFrom(...TEMPLATES),
    t: segment,
    p: segment,
    g: segment,
    m: segment,
    query,
    body,
    contentType: fc.constantFrom(
      undefined,
      "application/json",
      "application/x-ndjson",
      "application/vnd.rill.batch",
      "text/plain",
      "application/json; charset=utf-8",
      "multipart/form-data; boundary=x",
    ),
    accept: fc.constantFrom(
      undefined,
      "application/json",
      "application/vnd.rill.batch",
      "text/event-stream",
      "*/*",
    ),
    authorization: fc.constantFrom(...credentials),
    headers: fc.dictionary(headerName, headerValue, { maxKeys: 3 }),
  });
}

type Req = ReturnType<typeof requestArb> extends fc.Arbitrary<infer R> ? R : never;

async function send(url: string, r: Req): Promise<number> {
  const path = r.template.replace("{t}", r.t).replace("{p}", r.p).replace("{g}", r.g)
    .replace("{m}", r.m) + r.query;
  const headers = new Headers(r.headers);
  if (r.contentType) headers.set("content-type", r.contentType);
  if (r.accept) headers.set("accept", r.accept);
  if (r.authorization) headers.set("authorization", r.authorization);
  const hasBody = r.body !== undefined && r.method !== "GET" && r.method !== "HEAD";
  const res = await fetch(url + path, {
    method: r.method,
    headers,
    body: hasBody ? r.body as BodyInit : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  // SSE streams never end on their own: read nothing, cancel.
  await res.body?.cancel();
  return res.status;
}

async function adminGet(url: string, admin: string | null, path: string): Promise<unknown> {
  const res = await fetch(url + path, {
    headers: admin ? { authorization: `Bearer ${admin}` } : {},
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${path}: ${text}`);
  return JSON.parse(text);
}

async function snapshot(url: string, admin: string | null): Promise<unknown> {
  const records = await adminGet(url, admin, "/v1/topics/fz/partitions/0/records?offset=0") as {
    records: unknown[];
    highWatermark: number;
  };
  const state: Record<string, unknown> = {
    records: records.records,
    hw: records.highWatermark,
    offsets: (await adminGet(url, admin, "/v1/groups/fzg/offsets") as { offsets: unknown })
      .offsets,
    topic: await adminGet(url, admin, "/v1/topics/fz"),
  };
  if (admin) {
    state.topics = await adminGet(url, admin, "/v1/topics");
    state.keys = await adminGet(url, admin, "/v1/auth/keys");
    state.acls = await adminGet(url, admin, "/v1/auth/acls");
  }
  return state;
}

async function seed(url: string, admin: string | null): Promise<void> {
  const h = {
    "content-type": "application/json",
    ...(admin ? { authorization: `Bearer ${admin}` } : {}),
  };
  const post = async (path: string, b: unknown) => {
    const res = await fetch(url + path, { method: "POST", headers: h, body: JSON.stringify(b) });
    const text = await res.text();
    assert.ok(res.ok, `${path}: ${text}`);
  };
  await post("/v1/topics", { name: "fz", partitions: 1 });
  await post("/v1/topics/fz/records", { records: [{ key: "k", value: "v" }, { value: "w" }] });
  await post("/v1/groups/fzg/offsets", { offsets: [{ topic: "fz", partition: 0, offset: 1 }] });
}

async function fuzz(broker: BrokerProcess, credentials: string[], runs: number, protect: boolean) {
  let arb = requestArb(credentials);
  if (!protect) {
    // Without auth, a well-formed DELETE or PATCH of the seeded topic or group is a real
    // request that would change them: aim those at other names.
    arb = arb.filter((r) =>
      !((r.method === "DELETE" || r.method === "PATCH") &&
        [r.t, r.g].some((s) => s === "fz" || s === "fzg"))
    );
  }
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(arb, async (r) => {
      const status = await send(broker.url, r);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      assert.ok(status < 500, `HTTP ${status} for ${JSON.stringify(r).slice(0, 500)}`);
    }),
    { numRuns: runs, seed: Number(Deno.env.get("RILL_FUZZ_SEED") ?? Date.now() % 2 ** 31) },
  );
  return statuses;
}

async function assertAlive(broker: BrokerProcess): Promise<void> {
  const exited = await Promise.race([broker.exited.then(() => true), Promise.resolve(false)]);
  assert.equal(exited, false, `the broker exited:\n${broker.stderr()}`);
  const res = await fetch(`${broker.url}/healthz`);
  assert.equal(res.status, 200);
  await res.body?.cancel();
}

Deno.test("fuzz: malformed requests to every route of a broker with auth on get 4xx and change nothing", async () => {
  await using broker = await startBroker({ extraArgs: ["--auth"] });
  const kv = await Deno.openKv(`${broker.dataDir}/meta.kv`);
  let admin: string;
  try {
    admin = (await new ApiKeyStore(kv).bootstrap()).token;
  } finally {
    kv.close();
  }
  await seed(broker.url, admin);
  const before = await snapshot(broker.url, admin);
  const [keyId] = admin.split(".");
  const statuses = await fuzz(
    broker,
    [
      undefined as unknown as string,
      "",
      "Bearer",
      "Bearer x.y",
      `Bearer ${keyId}.wrong`,
      `Basic ${btoa(`${keyId}:wrong`)}`,
      "Basic !!!",
      "Digest abc",
      `Bearer ${"a".repeat(2000)}`,
    ],
    200,
    true,
  );
  await assertAlive(broker);
  assert.deepEqual(await snapshot(broker.url, admin), before);
  assert.ok((statuses.get(401) ?? 0) > 0, JSON.stringify([...statuses]));
});

Deno.test("fuzz: malformed requests to every route of a broker with auth off get 4xx and change nothing", async () => {
  await using broker = await startBroker();
  await seed(broker.url, null);
  const before = await snapshot(broker.url, null);
  await fuzz(broker, [undefined as unknown as string, "Bearer x.y"], 200, false);
  await assertAlive(broker);
  assert.deepEqual(await snapshot(broker.url, null), before);
});
