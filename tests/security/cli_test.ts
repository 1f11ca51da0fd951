/**
 * The CLI's side of security: `rill auth bootstrap --data` against a running broker's KV,
 * credentials from `$RILL_API_KEY`, `rill auth whoami`, and the loud warning of a broker
 * listening on a non-loopback address without `--auth`.
 */
import assert from "node:assert/strict";
import { parseSecurityArgs } from "../../src/cli/broker_security.ts";
import { connection, UsageError } from "../../src/cli/common.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { cli } from "../_helpers/cli_in_process.ts";

Deno.test("rill auth bootstrap --data prints one admin key once; keys work, the second bootstrap fails", async () => {
  await using broker = await startBroker({ extraArgs: ["--auth"] });
  const first = await cli("auth", "bootstrap", "--data", broker.dataDir);
  assert.equal(first.code, 0, first.err);
  const admin = first.out.trim();
  assert.match(admin, /^rk_[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
  assert.match(first.err, /only time/);
  const second = await cli("auth", "bootstrap", "--data", broker.dataDir);
  assert.equal(second.code, 1);
  assert.equal(second.out, "", "no second key is printed");

  const who = await cli("auth", "whoami", "--broker", broker.url, "--api-key", admin);
  assert.equal(who.code, 0, who.err);
  assert.equal(who.out, "admin (superuser)\n");
  const anonymous = await cli("topics", "list", "--broker", broker.url);
  assert.equal(anonymous.code, 1);
  assert.match(anonymous.err, /UNAUTHENTICATED/);
});

Deno.test("connection() takes the key from --api-key, else $RILL_API_KEY, and refuses a missing CA file", () => {
  const env = (name: string) =>
    ({ RILL_API_KEY: "rk_0000000000000000.env" } as Record<string, string>)[name];
  assert.equal(connection({}, env).auth, "rk_0000000000000000.env");
  assert.equal(
    connection({ "api-key": "rk_1111111111111111.flag" }, env).auth,
    "rk_1111111111111111.flag",
  );
  assert.equal(connection({}, () => undefined).auth, undefined);
  assert.throws(
    () => connection({ "ca-file": "/nonexistent/ca.pem" }, () => undefined),
    UsageError,
  );
});

Deno.test("security flags: TLS files go in pairs, quotas parse, a short cluster secret is refused", () => {
  assert.throws(() => parseSecurityArgs({ "tls-cert": "c.pem" }), /go together/);
  assert.throws(() => parseSecurityArgs({ "cluster-secret": "short" }), /at least 16/);
  assert.throws(() => parseSecurityArgs({ "max-streams": "0" }), UsageError);
  const parsed = parseSecurityArgs({
    auth: true,
    "quota-produce-bytes": "1048576",
    "max-streams": "50",
  });
  assert.deepEqual(parsed.quotas, { produceBytesPerSec: 1048576, maxStreams: 50 });
  assert.equal(parsed.auth, true);
});

Deno.test("a broker listening on a non-loopback address without --auth warns loudly", async () => {
  await using open = await startBroker({ extraArgs: ["--listen", "0.0.0.0:0"] });
  let warned = false;
  for (let i = 0; i < 100 && !warned; i++) {
    warned = /WARNING: listening on 0\.0\.0\.0 WITHOUT AUTHENTICATION/.test(open.stderr());
    if (!warned) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(warned, open.stderr());
  await using closed = await startBroker();
  const health = await fetch(`${closed.url}/healthz`);
  assert.equal(health.status, 200);
  await health.body?.cancel();
  assert.doesNotMatch(closed.stderr(), /WARNING/);
});
