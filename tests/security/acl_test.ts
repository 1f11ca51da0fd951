/**
 * ACL semantics through the HTTP API: prefix bindings, deny overriding allow, `*`
 * principals, group and topic rights for commits, topic creation by cluster right, and
 * revocation and expiry seen by every broker within seconds.
 */
import assert from "node:assert/strict";
import { evaluateAcls } from "../../src/coordination/acls.ts";
import { ApiKeyStore } from "../../src/coordination/auth_keys.ts";
import { Security } from "../../src/http/auth.ts";
import { openSecureBroker } from "./_secure_app.ts";

const produce = (value: string) => ({ records: [{ value }] });

Deno.test("a prefixed ACL covers the names under it and nothing else", async () => {
  await using b = await openSecureBroker();
  for (const name of ["orders.eu", "orders.us", "ordersx", "payments"]) {
    await b.call("POST", "/v1/topics", b.admin, { name });
  }
  const alice = await b.key("alice");
  await b.allow("alice", "topic", "orders.", "write", { patternType: "prefixed" });
  for (
    const [topic, status] of [["orders.eu", 200], ["orders.us", 200], ["ordersx", 403], [
      "payments",
      403,
    ]] as const
  ) {
    const res = await b.call("POST", `/v1/topics/${topic}/records`, alice, produce("x"));
    assert.equal(res.status, status, `${topic}: ${JSON.stringify(res.body)}`);
  }
  // Write implies describe, so the listing shows exactly the prefixed topics.
  const list = await b.call("GET", "/v1/topics", alice);
  assert.deepEqual(list.body.topics.map((t: { name: string }) => t.name), [
    "orders.eu",
    "orders.us",
  ]);
  // Write does not imply read.
  const read = await b.call("GET", "/v1/topics/orders.eu/partitions/0/records?offset=0", alice);
  assert.equal(read.status, 403);
  assert.equal(read.body.error.code, "TOPIC_AUTHORIZATION_FAILED");
});

Deno.test("a deny wins over any allow, including a wildcard allow", async () => {
  await using b = await openSecureBroker();
  await b.call("POST", "/v1/topics", b.admin, { name: "secret.pay" });
  await b.call("POST", "/v1/topics", b.admin, { name: "public" });
  const bob = await b.key("bob");
  await b.allow("*", "topic", "*", "all");
  await b.allow("bob", "topic", "secret.", "read", { patternType: "prefixed", permission: "deny" });
  const denied = await b.call("GET", "/v1/topics/secret.pay/partitions/0/records?offset=0", bob);
  assert.equal(denied.status, 403, JSON.stringify(denied.body));
  const other = await b.call("GET", "/v1/topics/public/partitions/0/records?offset=0", bob);
  assert.equal(other.status, 200, JSON.stringify(other.body));
  // The deny is on read only: writing the topic is still allowed by the wildcard.
  const write = await b.call("POST", "/v1/topics/secret.pay/records", bob, produce("x"));
  assert.equal(write.status, 200);
  // Removing the deny restores the read.
  const removed = await b.call("DELETE", "/v1/auth/acls?principal=bob&permission=deny", b.admin);
  assert.equal(removed.body.removed.length, 1);
  const again = await b.call("GET", "/v1/topics/secret.pay/partitions/0/records?offset=0", bob);
  assert.equal(again.status, 200);
});

Deno.test("committing offsets needs read on the group and on every committed topic", async () => {
  await using b = await openSecureBroker();
  await b.call("POST", "/v1/topics", b.admin, { name: "events" });
  await b.call("POST", "/v1/topics/events/records", b.admin, produce("e"));
  const carol = await b.key("carol");
  const commit = { offsets: [{ topic: "events", partition: 0, offset: 1 }] };
  const offsets = async () =>
    (await b.call("GET", "/v1/groups/billing/offsets", b.admin)).body.offsets ?? [];

  await b.allow("carol", "topic", "events", "read");
  let res = await b.call("POST", "/v1/groups/billing/offsets", carol, commit);
  assert.equal(res.status, 403);
  assert.equal(res.body.error.code, "GROUP_AUTHORIZATION_FAILED");
  assert.deepEqual(await offsets(), []);

  await b.call("DELETE", "/v1/auth/acls?principal=carol", b.admin);
  await b.allow("carol", "group", "bill", "read", { patternType: "prefixed" });
  res = await b.call("POST", "/v1/groups/billing/offsets", carol, commit);
  assert.equal(res.status, 403);
  assert.equal(res.body.error.code, "TOPIC_AUTHORIZATION_FAILED");
  // Joining the group to read the topic is refused the same way.
  res = await b.call("POST", "/v1/groups/billing/members", carol, { topics: ["events"] });
  assert.equal(res.body.error.code, "TOPIC_AUTHORIZATION_FAILED");
  assert.deepEqual(await offsets(), []);

  await b.allow("carol", "topic", "events", "read");
  res = await b.call("POST", "/v1/groups/billing/offsets", carol, commit);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal((await offsets())[0].offset, 1);
  // A group outside the prefix stays closed.
  res = await b.call("POST", "/v1/groups/audit/offsets", carol, commit);
  assert.equal(res.body.error.code, "GROUP_AUTHORIZATION_FAILED");
  // Offsets of topics carol may not describe are left out of the group's offsets.
  await b.call("POST", "/v1/topics", b.admin, { name: "hidden" });
  await b.call("POST", "/v1/groups/billing/offsets", b.admin, {
    offsets: [{ topic: "hidden", partition: 0, offset: 0 }],
  });
  const seen = await b.call("GET", "/v1/groups/billing/offsets", carol);
  assert.deepEqual(seen.body.offsets.map((o: { topic: string }) => o.topic), ["events"]);
  assert.equal((await offsets()).length, 2, "the admin sees both");
  // Describing the group needs describe, which read implies; listing shows only it.
  const list = await b.call("GET", "/v1/groups", carol);
  assert.deepEqual(list.body.groups.map((g: { groupId: string }) => g.groupId), ["billing"]);
});

Deno.test("create on the cluster or on a topic prefix allows creating topics", async () => {
  await using b = await openSecureBroker();
  const dave = await b.key("dave");
  await b.allow("dave", "topic", "dave.", "create", { patternType: "prefixed" });
  assert.equal((await b.call("POST", "/v1/topics", dave, { name: "dave.one" })).status, 201);
  const other = await b.call("POST", "/v1/topics", dave, { name: "other" });
  assert.equal(other.body.error.code, "TOPIC_AUTHORIZATION_FAILED");
  await b.allow("dave", "cluster", "rill-cluster", "create");
  assert.equal((await b.call("POST", "/v1/topics", dave, { name: "other" })).status, 201);
  // Only a superuser may mint a superuser key, even with alter on the cluster.
  await b.allow("dave", "cluster", "rill-cluster", "alter");
  const su = await b.call("POST", "/v1/auth/keys", dave, { principal: "x", superuser: true });
  assert.equal(su.body.error.code, "CLUSTER_AUTHORIZATION_FAILED");
});

Deno.test("evaluateAcls: literal, prefixed, wildcard, implied describe, default deny", () => {
  const base = { resourceType: "topic", patternType: "literal", permission: "allow" } as const;
  const acls = [
    { ...base, principal: "a", resourceName: "t", operation: "write" },
    { ...base, principal: "*", resourceName: "pub", operation: "read" },
    { ...base, principal: "a", patternType: "prefixed", resourceName: "x.", operation: "alter" },
  ] as const;
  const t = (name: string) => ({ type: "topic", name }) as const;
  assert.equal(evaluateAcls(acls, "a", t("t"), "write"), true);
  assert.equal(evaluateAcls(acls, "a", t("t"), "describe"), true);
  assert.equal(evaluateAcls(acls, "a", t("t"), "read"), false);
  assert.equal(evaluateAcls(acls, "b", t("pub"), "read"), true);
  assert.equal(evaluateAcls(acls, "a", t("x.y"), "alter"), true);
  assert.equal(evaluateAcls(acls, "a", t("xy"), "alter"), false);
  assert.equal(evaluateAcls(acls, "a", { type: "group", name: "t" }, "write"), false);
  assert.equal(evaluateAcls([], "a", t("t"), "describe"), false);
});

Deno.test("a revoked key stops working on every broker sharing the KV within seconds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rill-sec-kv-" });
  try {
    const kv1 = await Deno.openKv(`${dir}/meta.kv`);
    const kv2 = await Deno.openKv(`${dir}/meta.kv`);
    try {
      await using a = await openSecureBroker({ kv: kv1, id: 1 });
      await using b = await openSecureBroker({ kv: kv2, id: 2 });
      const eve = await a.key("eve");
      await a.allow("eve", "cluster", "rill-cluster", "describe");
      assert.equal((await b.call("GET", "/v1/cluster", eve)).status, 200);
      const revoked = await a.call("DELETE", `/v1/auth/keys/${eve.split(".")[0]}`, a.admin);
      assert.equal(revoked.status, 200);
      assert.equal((await a.call("GET", "/v1/cluster", eve)).status, 401, "at once where revoked");
      // Broker 2 polls the auth version: bounded wait, no event crosses processes.
      let status = 200;
      for (let i = 0; i < 100 && status === 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = (await b.call("GET", "/v1/cluster", eve)).status;
      }
      assert.equal(status, 401, "broker 2 refuses the revoked key within 10 s");
    } finally {
      kv1.close();
      kv2.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an expired key is refused once its time has passed", async () => {
  let now = Date.now();
  const kv = await Deno.openKv(":memory:");
  try {
    const audit: string[] = [];
    const security = new Security(kv, { auth: true, now: () => now, audit: (l) => audit.push(l) });
    const keys = new ApiKeyStore(kv, () => now);
    const { token } = await keys.create({ principal: "temp", expiresMs: now + 60_000 });
    const ok = await security.authenticate(`Bearer ${token}`);
    assert.equal("name" in ok && ok.name, "temp");
    now += 61_000;
    const late = await security.authenticate(`Bearer ${token}`);
    assert.deepEqual(late, { error: "expired key", keyId: token.split(".")[0] });
    const stale = await keys.create({ principal: "old", expiresMs: now - 1000 }).catch((e) => e);
    assert.equal(stale.code, "INVALID_REQUEST", "a key cannot be created already expired");
  } finally {
    kv.close();
  }
});

Deno.test("audit lines are capped per second and the rest counted, so a flood cannot fill the disk", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    let now = 1_000_000;
    const lines: string[] = [];
    const security = new Security(kv, {
      auth: true,
      now: () => now,
      audit: (l) => lines.push(l),
      auditPerSecond: 3,
    });
    for (let i = 0; i < 10; i++) security.auditDenied({ audit: "authorization_denied", i });
    assert.equal(lines.length, 3);
    now += 1000;
    security.auditDenied({ audit: "authorization_denied", i: 99 });
    assert.deepEqual(JSON.parse(lines[3]), { audit: "suppressed", lines: 7 });
    assert.equal(JSON.parse(lines[4]).i, 99);
  } finally {
    kv.close();
  }
});

Deno.test("a producer key belongs to its principal: another cannot fence it", async () => {
  await using b = await openSecureBroker();
  const alice = await b.key("alice");
  const mallory = await b.key("mallory");
  // Starting an idempotent producer needs write on some topic (idempotent_write_test.ts).
  await b.allow("alice", "topic", "billing", "write");
  await b.allow("mallory", "topic", "other", "write");
  const first = await b.call("POST", "/v1/producers", alice, { producerKey: "billing-app" });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  // The same key from another principal names another producer: alice's epoch is untouched.
  const other = await b.call("POST", "/v1/producers", mallory, { producerKey: "billing-app" });
  assert.equal(other.status, 200);
  assert.notEqual(other.body.producerId, first.body.producerId);
  const again = await b.call("POST", "/v1/producers", alice, { producerKey: "billing-app" });
  assert.equal(again.body.producerId, first.body.producerId);
  assert.equal(again.body.producerEpoch, first.body.producerEpoch + 1);
  // Without credentials no id is handed out.
  assert.equal((await b.call("POST", "/v1/producers", undefined, {})).status, 401);
});
