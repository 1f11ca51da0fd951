/**
 * Who may start an idempotent producer (`POST /v1/producers`, Kafka's InitProducerId):
 * since Kafka 3.0 (KIP-679) a principal with `idempotent_write` on the cluster or `write`
 * on any topic; anyone else gets 403 CLUSTER_AUTHORIZATION_FAILED and no producer id.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { type AclBinding, evaluateAclsOnAny } from "../../src/coordination/acls.ts";
import { AclStore } from "../../src/coordination/acls.ts";
import { ApiKeyStore } from "../../src/coordination/auth_keys.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { cli } from "../_helpers/cli_in_process.ts";
import { openSecureBroker } from "./_secure_app.ts";

const acl = (
  resourceName: string,
  extra: Partial<AclBinding> = {},
): AclBinding => ({
  principal: "alice",
  resourceType: "topic",
  patternType: "literal",
  resourceName,
  operation: "write",
  permission: "allow",
  ...extra,
});

Deno.test("evaluateAclsOnAny() allows when some name is allowed and not denied (Kafka's authorizeByResourceType)", () => {
  const any = (acls: AclBinding[]) => evaluateAclsOnAny(acls, "alice", "topic", "write");
  assert.equal(any([]), false);
  assert.equal(any([acl("orders")]), true);
  assert.equal(any([acl("orders.", { patternType: "prefixed" })]), true);
  assert.equal(any([acl("orders", { principal: "*" })]), true);
  assert.equal(any([acl("orders", { operation: "all" })]), true);
  // another principal, operation or resource type does not count
  assert.equal(any([acl("orders", { principal: "bob" })]), false);
  assert.equal(any([acl("orders", { operation: "read" })]), false);
  assert.equal(any([acl("orders", { resourceType: "group" })]), false);
  // a deny covering every allowed name wins
  assert.equal(any([acl("orders"), acl("orders", { permission: "deny" })]), false);
  assert.equal(
    any([acl("orders"), acl("ord", { patternType: "prefixed", permission: "deny" })]),
    false,
  );
  assert.equal(
    any([
      acl("orders.", { patternType: "prefixed" }),
      acl("orders", { patternType: "prefixed", permission: "deny" }),
    ]),
    false,
  );
  assert.equal(any([acl("*"), acl("*", { permission: "deny", operation: "all" })]), false);
  // a deny that leaves some allowed name open does not
  assert.equal(any([acl("orders"), acl("payments"), acl("orders", { permission: "deny" })]), true);
  assert.equal(any([acl("*"), acl("orders", { permission: "deny" })]), true);
  assert.equal(
    any([
      acl("ord", { patternType: "prefixed" }),
      acl("orders", { patternType: "prefixed", permission: "deny" }),
    ]),
    true,
  );
  // a deny of another operation does not count either
  assert.equal(
    any([acl("orders"), acl("orders", { permission: "deny", operation: "read" })]),
    true,
  );
});

Deno.test("POST /v1/producers needs idempotent_write on the cluster or write on some topic", async (t) => {
  await using b = await openSecureBroker();
  await b.call("POST", "/v1/topics", b.admin, { name: "orders" });
  const init = (token: string, body: unknown = {}) => b.call("POST", "/v1/producers", token, body);

  await t.step("no write anywhere: 403 CLUSTER_AUTHORIZATION_FAILED, audited", async () => {
    const reader = await b.key("reader");
    await b.allow("reader", "topic", "orders", "read");
    await b.allow("reader", "group", "*", "all");
    await b.allow("reader", "cluster", "rill-cluster", "describe");
    for (const body of [{}, { producerKey: "app" }]) {
      const res = await init(reader, body);
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, "CLUSTER_AUTHORIZATION_FAILED");
      assert.equal(res.body.error.retriable, false);
      assert.match(res.body.error.message, /^[^.]+$/, "one sentence");
      assert.match(res.body.error.message, /idempotent_write on the cluster or write on a topic/);
    }
    const line = b.audit.map((l) => JSON.parse(l)).find((l) =>
      l.audit === "authorization_denied" && l.operation === "idempotent_write"
    );
    assert.equal(line?.principal, "reader");
    assert.equal(line?.resourceType, "cluster");
  });

  await t.step(
    "write on one topic (literal, prefixed, or for '*' principals): allowed",
    async () => {
      const literal = await b.key("literal");
      await b.allow("literal", "topic", "orders", "write");
      const prefixed = await b.key("prefixed");
      await b.allow("prefixed", "topic", "ord", "write", { patternType: "prefixed" });
      const everyone = await b.key("everyone");
      for (const token of [literal, prefixed]) {
        const res = await init(token);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.ok(Number.isSafeInteger(res.body.producerId));
      }
      assert.equal((await init(everyone)).status, 403);
      await b.allow("*", "topic", "logs.", "write", { patternType: "prefixed" });
      assert.equal((await init(everyone, { producerKey: "k" })).status, 200);
      await b.call("DELETE", "/v1/auth/acls?principal=*", b.admin);
      assert.equal((await init(everyone)).status, 403);
    },
  );

  await t.step("idempotent_write (or all) on the cluster alone: allowed", async () => {
    const idem = await b.key("idem");
    await b.allow("idem", "cluster", "rill-cluster", "idempotent_write");
    const res = await init(idem);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    // it grants no write on any topic
    const write = await b.call("POST", "/v1/topics/orders/records", idem, {
      records: [{ value: "x" }],
    });
    assert.equal(write.status, 403);
    const all = await b.key("all");
    await b.allow("all", "cluster", "rill-cluster", "all");
    assert.equal((await init(all)).status, 200);
  });

  await t.step("a deny covering every allowed topic refuses; removing it allows", async () => {
    const denied = await b.key("denied");
    await b.allow("denied", "topic", "orders", "write");
    await b.allow("denied", "topic", "or", "write", {
      patternType: "prefixed",
      permission: "deny",
    });
    assert.equal((await init(denied)).status, 403);
    const removed = await b.call(
      "DELETE",
      "/v1/auth/acls?principal=denied&permission=deny",
      b.admin,
    );
    assert.equal(removed.body.removed.length, 1);
    assert.equal((await init(denied)).status, 200);
  });

  await t.step(
    "idempotent_write names the cluster only: 400 elsewhere, nothing added",
    async () => {
      const before = (await b.call("GET", "/v1/auth/acls", b.admin)).body.acls.length;
      const res = await b.call("POST", "/v1/auth/acls", b.admin, {
        principal: "x",
        resourceType: "topic",
        resourceName: "orders",
        operation: "idempotent_write",
      });
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, "INVALID_REQUEST");
      assert.match(res.body.error.message, /cluster only/);
      assert.equal((await b.call("GET", "/v1/auth/acls", b.admin)).body.acls.length, before);
    },
  );
});

Deno.test("rill acls add --cluster --operation idempotent_write lets a client producer start, against a broker process", async () => {
  await using broker = await startBroker({ extraArgs: ["--auth"] });
  const kv = await Deno.openKv(`${broker.dataDir}/meta.kv`);
  let admin: string, svc: string;
  try {
    const keys = new ApiKeyStore(kv);
    admin = (await keys.bootstrap()).token;
    svc = (await keys.create({ principal: "svc" })).token;
    // svc may read the topic but write nothing yet
    await new AclStore(kv).add({
      principal: "svc",
      resourceType: "topic",
      patternType: "literal",
      resourceName: "orders",
      operation: "read",
      permission: "allow",
    });
  } finally {
    kv.close();
  }
  await new Rill({ brokers: [broker.url], auth: admin }).admin().createTopic({ topic: "orders" });
  const rill = new Rill({ brokers: [broker.url], auth: svc, retry: { retries: 1 } });
  const refused = await rill.producer().send({ topic: "orders", messages: [{ value: "x" }] })
    .catch((e) => e);
  assert.equal(refused.code, "CLUSTER_AUTHORIZATION_FAILED");

  const added = await cli(
    "acls",
    "add",
    "--broker",
    broker.url,
    "--api-key",
    admin,
    "--principal",
    "svc",
    "--cluster",
    "--operation",
    "idempotent_write",
  );
  assert.equal(added.code, 0, added.err);
  assert.match(added.out, /^allow\tsvc\tidempotent_write\tcluster\tliteral\trill-cluster\t/);
  // the producer id is granted; the write itself still needs write on the topic
  const producer = rill.producer();
  const denied = await producer.send({ topic: "orders", messages: [{ value: "x" }] })
    .catch((e) => e);
  assert.equal(denied.code, "TOPIC_AUTHORIZATION_FAILED");
  await producer.disconnect();
  assert.match(broker.stderr(), /"operation":"write"/);

  const help = await cli("acls", "--help");
  assert.match(help.out, /idempotent_write/);
});
