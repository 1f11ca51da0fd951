/**
 * End to end over TLS with auth on: a broker process serving HTTPS with a certificate
 * signed by a CA made in the test (openssl), the one-time bootstrap token, keys and ACLs
 * managed with the CLI (`--ca-file`, `--api-key`), and the client library producing and
 * reading with `auth` and an HTTP client trusting the CA.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { hasOpenssl, makeCertificates } from "../_helpers/tls_certificates.ts";
import { cli } from "../_helpers/cli_in_process.ts";

Deno.test({
  name:
    "TLS + auth end to end: bootstrap token, CLI with --ca-file and --api-key, client with auth and a CA",
  ignore: !hasOpenssl(),
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "rill-tls-" });
    try {
      const pem = await makeCertificates(dir);
      await using broker = await startBroker({
        extraArgs: ["--auth", "--tls-cert", pem.cert, "--tls-key", pem.key],
      });
      assert.match(broker.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const common = ["--broker", broker.url, "--ca-file", pem.ca];
      let admin = "";

      await t.step("the one-time bootstrap token printed on the broker's stderr", async () => {
        // The token is printed before the ready line; stderr is drained concurrently.
        let m: RegExpMatchArray | null = null;
        for (let i = 0; i < 100 && m === null; i++) {
          m = broker.stderr().match(/bootstrap token \(valid 1 h\): (rb_\S+)/);
          if (m === null) await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(m, broker.stderr());
        const first = await cli("auth", "bootstrap", "--token", m[1], ...common);
        assert.equal(first.code, 0, first.err);
        admin = first.out.trim();
        assert.match(admin, /^rk_[0-9a-f]{16}\.\S+$/);
        const again = await cli("auth", "bootstrap", "--token", m[1], ...common);
        assert.equal(again.code, 1);
        assert.match(again.err, /UNAUTHENTICATED/);
        const direct = await cli("auth", "bootstrap", "--data", broker.dataDir);
        assert.equal(direct.code, 1, "a cluster is bootstrapped once");
        assert.match(direct.err, /bootstrapped already/);
      });

      let alice = "";
      await t.step("keys and ACLs with the CLI", async () => {
        const created = await cli(
          "topics",
          "create",
          "orders",
          "--partitions",
          "2",
          ...common,
          "--api-key",
          admin,
        );
        assert.equal(created.code, 0, created.err);
        const key = await cli(
          "auth",
          "keys",
          "create",
          "--principal",
          "alice",
          ...common,
          "--api-key",
          admin,
        );
        assert.equal(key.code, 0, key.err);
        alice = key.out.trim();
        const acl = await cli(
          "acls",
          "add",
          "--principal",
          "alice",
          "--topic",
          "orders",
          "--operation",
          "read,write",
          ...common,
          "--api-key",
          admin,
        );
        assert.equal(acl.code, 0, acl.err);
        const listed = await cli(
          "acls",
          "list",
          "--principal",
          "alice",
          ...common,
          "--api-key",
          admin,
        );
        // a header line, then the two ACLs
        assert.equal(listed.out.trim().split("\n").length, 3, listed.out);
        const keys = await cli("auth", "keys", "list", ...common, "--api-key", admin);
        assert.match(keys.out, /\talice\t-\tactive\t/);
        assert.ok(!keys.out.includes(alice.split(".")[1]), "no secret is listed");
      });

      await t.step("the client library over TLS with auth", async () => {
        const httpClient = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(pem.ca)] });
        try {
          const rill = new Rill({ brokers: [broker.url], auth: alice, httpClient });
          const producer = rill.producer();
          await producer.send({ topic: "orders", messages: [{ key: "k", value: "over tls" }] });
          await producer.disconnect();
          const consumed = await cli(
            "consume",
            "orders",
            "--from-beginning",
            "--max-messages",
            "1",
            "--timeout-ms",
            "10000",
            ...common,
            "--api-key",
            alice,
          );
          assert.equal(consumed.code, 0, consumed.err);
          assert.match(consumed.out, /over tls/);
          // Alice may not create topics.
          const denied = await rill.admin().createTopic({ topic: "mine" }).catch((e) => e);
          assert.equal(denied.code, "TOPIC_AUTHORIZATION_FAILED");
        } finally {
          httpClient.close();
        }
      });

      await t.step("refusals: no CA, no key, a revoked key", async () => {
        const noCa = await cli("topics", "list", "--broker", broker.url, "--api-key", admin);
        assert.equal(noCa.code, 1);
        assert.match(noCa.err, /BROKER_NOT_AVAILABLE|certificate|UnknownIssuer/i);
        const noKey = await cli("topics", "list", ...common);
        assert.equal(noKey.code, 1);
        assert.match(noKey.err, /UNAUTHENTICATED/);
        const revoked = await cli(
          "auth",
          "keys",
          "revoke",
          alice.split(".")[0],
          ...common,
          "--api-key",
          admin,
        );
        assert.equal(revoked.code, 0, revoked.err);
        const after = await cli("topics", "describe", "orders", ...common, "--api-key", alice);
        assert.equal(after.code, 1);
        assert.match(after.err, /UNAUTHENTICATED/);
      });

      await t.step("/healthz over TLS needs no key and tells nothing but liveness", async () => {
        const httpClient = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(pem.ca)] });
        try {
          const res = await fetch(`${broker.url}/healthz`, { client: httpClient });
          assert.deepEqual(await res.json(), { status: "ok" });
        } finally {
          httpClient.close();
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
