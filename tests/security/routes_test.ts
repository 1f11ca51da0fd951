/**
 * Every route refuses callers without credentials, with a wrong, malformed or revoked key
 * (401 UNAUTHENTICATED with WWW-Authenticate) and callers whose key lacks the ACL (403
 * with the contract's code), and nothing is produced, consumed, committed or changed.
 */
import assert from "node:assert/strict";
import { type Answer, openSecureBroker, type SecureBroker } from "./_secure_app.ts";

interface RouteCase {
  method: string;
  path: string;
  body?: unknown;
  /** the 403 code for a key without ACLs; "filtered" for listings answering 200 */
  denied: string;
}

function routes(keyId: string): RouteCase[] {
  const T = "TOPIC_AUTHORIZATION_FAILED", G = "GROUP_AUTHORIZATION_FAILED";
  const C = "CLUSTER_AUTHORIZATION_FAILED";
  return [
    { method: "GET", path: "/v1/cluster", denied: C },
    { method: "GET", path: "/v1/topics", denied: "filtered" },
    { method: "POST", path: "/v1/topics", body: { name: "fresh" }, denied: T },
    { method: "GET", path: "/v1/topics/t", denied: T },
    { method: "PATCH", path: "/v1/topics/t", body: { partitions: 3 }, denied: T },
    { method: "DELETE", path: "/v1/topics/t", denied: T },
    {
      method: "POST",
      path: "/v1/topics/t/reassign",
      body: { partitions: [{ partition: 0, replicas: [1] }] },
      denied: C,
    },
    {
      method: "POST",
      path: "/v1/topics/t/records",
      body: { records: [{ value: "x" }] },
      denied: T,
    },
    { method: "GET", path: "/v1/topics/t/partitions/0/records?offset=0", denied: T },
    { method: "GET", path: "/v1/topics/t/partitions/0/offsets?at=latest", denied: T },
    { method: "POST", path: "/v1/producers", body: {}, denied: C },
    { method: "GET", path: "/v1/producers/1?topic=t&partition=0", denied: T },
    { method: "GET", path: "/v1/groups", denied: "filtered" },
    { method: "GET", path: "/v1/groups/g", denied: G },
    { method: "DELETE", path: "/v1/groups/g", denied: G },
    { method: "POST", path: "/v1/groups/g/members", body: { topics: ["t"] }, denied: G },
    {
      method: "POST",
      path: "/v1/groups/g/members/m-1/heartbeat",
      body: { generation: 1 },
      denied: G,
    },
    { method: "DELETE", path: "/v1/groups/g/members/m-1", denied: G },
    {
      method: "POST",
      path: "/v1/groups/g/offsets",
      body: { offsets: [{ topic: "t", partition: 0, offset: 0 }] },
      denied: G,
    },
    { method: "GET", path: "/v1/groups/g/offsets", denied: G },
    {
      method: "POST",
      path: "/v1/groups/g/offsets/reset",
      body: { topic: "t", to: "earliest" },
      denied: G,
    },
    { method: "POST", path: "/v1/auth/keys", body: { principal: "mallory" }, denied: C },
    { method: "GET", path: "/v1/auth/keys", denied: C },
    { method: "DELETE", path: `/v1/auth/keys/${keyId}`, denied: C },
    {
      method: "POST",
      path: "/v1/auth/acls",
      body: {
        principal: "nobody",
        resourceType: "cluster",
        operation: "all",
      },
      denied: C,
    },
    { method: "GET", path: "/v1/auth/acls", denied: C },
    { method: "DELETE", path: "/v1/auth/acls?principal=reader", denied: C },
  ];
}

/** Everything a refused request could have changed, read with the admin key. */
async function snapshot(t: SecureBroker): Promise<unknown> {
  const get = async (path: string) => {
    const res = await t.call("GET", path, t.admin);
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const records = [];
  for (const p of [0, 1]) {
    records.push(
      (await get(`/v1/topics/t/partitions/${p}/records?offset=0`)).records.map((
        r: { offset: number; value: string },
      ) => [r.offset, r.value]),
    );
  }
  const keys = (await get("/v1/auth/keys")).keys.map((
    k: { keyId: string; revokedMs: unknown },
  ) => [k.keyId, k.revokedMs]);
  return {
    topics: (await get("/v1/topics")).topics,
    t: await get("/v1/topics/t"),
    records,
    group: (await get("/v1/groups/g")).members,
    offsets: (await get("/v1/groups/g/offsets")).offsets,
    keys,
    acls: (await get("/v1/auth/acls")).acls,
  };
}

function assertUnauthenticated(res: Answer, what: string): void {
  assert.equal(res.status, 401, `${what}: ${JSON.stringify(res.body)}`);
  assert.equal(res.body.error.code, "UNAUTHENTICATED", what);
  assert.match(res.headers.get("www-authenticate") ?? "", /Bearer/, what);
}

Deno.test("every route refuses missing, wrong, malformed, revoked and unauthorized keys and changes nothing", async (t) => {
  await using b = await openSecureBroker();
  // State to protect: a topic with records, a group with a member and a committed offset,
  // a reader principal with an ACL.
  assert.equal(
    (await b.call("POST", "/v1/topics", b.admin, { name: "t", partitions: 2 })).status,
    201,
  );
  await b.call("POST", "/v1/topics/t/records", b.admin, {
    records: [{ value: "a", partition: 0 }, { value: "b", partition: 1 }],
  });
  // The member never heartbeats: the longest session the broker allows keeps it (and so the
  // group the snapshots compare) in place however slow the machine makes this test.
  const joined = await b.call("POST", "/v1/groups/g/members", b.admin, {
    topics: ["t"],
    sessionTimeoutMs: 1_800_000,
  });
  assert.equal(joined.status, 200, JSON.stringify(joined.body));
  await b.call("POST", "/v1/groups/g/offsets", b.admin, {
    memberId: joined.body.memberId,
    generation: joined.body.generation,
    offsets: [{ topic: "t", partition: 0, offset: 1 }],
  });
  await b.allow("reader", "topic", "t", "read");
  const nobody = await b.key("nobody");
  const revoked = await b.key("revoked");
  const revokedId = revoked.split(".")[0];
  assert.equal((await b.call("DELETE", `/v1/auth/keys/${revokedId}`, b.admin)).status, 200);
  const wrong = `${nobody.split(".")[0]}.not-the-secret`;
  const before = await snapshot(b);

  const cases = routes(nobody.split(".")[0]);
  await t.step(
    "no credentials, wrong secret, malformed, unknown and revoked keys: 401",
    async () => {
      for (const r of cases) {
        for (
          const [label, token] of [
            ["none", undefined],
            ["wrong", wrong],
            ["malformed", "not-a-key"],
            ["unknown", "rk_0000000000000000.whatever"],
            ["revoked", revoked],
          ] as const
        ) {
          const res = await b.call(r.method, r.path, token, r.body);
          assertUnauthenticated(res, `${label} ${r.method} ${r.path}`);
        }
      }
      // Basic with a wrong password too.
      const res = await b.call("GET", "/v1/topics", undefined, undefined, {
        authorization: `Basic ${btoa(`${nobody.split(".")[0]}:nope`)}`,
      });
      assertUnauthenticated(res, "basic");
    },
  );

  await t.step("a key without ACLs: 403 with the resource's code, listings filtered", async () => {
    for (const r of cases) {
      const res = await b.call(r.method, r.path, nobody, r.body);
      if (r.denied === "filtered") {
        assert.equal(res.status, 200, `${r.method} ${r.path}`);
        const list = res.body.topics ?? res.body.groups;
        assert.deepEqual(list, [], `${r.path} lists nothing the key may not describe`);
        continue;
      }
      assert.equal(res.status, 403, `${r.method} ${r.path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, r.denied, `${r.method} ${r.path}`);
    }
  });

  await t.step("nothing was produced, consumed, committed or changed", async () => {
    assert.deepEqual(await snapshot(b), before);
  });

  await t.step("/healthz answers without credentials and says only that it is alive", async () => {
    const res = await b.call("GET", "/healthz");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: "ok" });
  });

  await t.step("audit lines name principal, resource and operation, never a secret", () => {
    const lines = b.audit.map((l) => JSON.parse(l));
    const denied = lines.find((l) =>
      l.audit === "authorization_denied" && l.resourceName === "t" && l.operation === "write"
    );
    assert.equal(denied?.principal, "nobody");
    assert.equal(denied?.resourceType, "topic");
    assert.ok(lines.some((l) => l.audit === "authentication_failed" && l.reason === "revoked key"));
    assert.ok(
      lines.some((l) => l.audit === "authentication_failed" && l.reason === "wrong secret"),
    );
    const all = b.audit.join("\n");
    for (const token of [nobody, revoked, b.admin]) {
      assert.ok(!all.includes(token.split(".")[1]), "no secret in the audit log");
    }
    assert.ok(!all.includes("not-the-secret"), "not even a wrong one");
  });
});

Deno.test("HTTP Basic with key id and secret authenticates like the bearer token", async () => {
  await using b = await openSecureBroker();
  const [keyId, secret] = b.admin.split(".");
  const res = await b.call("GET", "/v1/auth/whoami", undefined, undefined, {
    authorization: `Basic ${btoa(`${keyId}:${secret}`)}`,
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body, { principal: "admin", superuser: true, keyId });
});
