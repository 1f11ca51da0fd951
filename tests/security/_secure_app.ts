/**
 * An in-process broker with security on, for route tests (`app.request`, no socket): a temp
 * data directory, an in-memory (or given) KV, the first admin key bootstrapped, and audit
 * lines captured.
 *
 * @module
 */
import type { Hono } from "hono";
import { Broker } from "../../src/broker/broker.ts";
import { ApiKeyStore } from "../../src/coordination/auth_keys.ts";
import { createApp } from "../../src/http/app.ts";
import type { AppSecurityOptions } from "../../src/http/security.ts";

/** An answer, parsed. */
export interface Answer {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
  headers: Headers;
}

/** A secured broker with its app. */
export interface SecureBroker extends AsyncDisposable {
  broker: Broker;
  app: Hono;
  kv: Deno.Kv;
  /** the admin (superuser) token */
  admin: string;
  /** audit lines written so far */
  audit: string[];
  /**
   * Sends a request with an optional token.
   *
   * @param method the method
   * @param path path and query
   * @param token bearer token (undefined: no Authorization header)
   * @param body JSON body
   * @param headers more headers
   */
  call(
    method: string,
    path: string,
    token?: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Answer>;
  /** creates a key for a principal and returns its token */
  key(principal: string): Promise<string>;
  /** adds an ACL binding as admin */
  allow(
    principal: string,
    resourceType: string,
    resourceName: string,
    operation: string,
    extra?: Record<string, unknown>,
  ): Promise<void>;
}

/**
 * Opens a secured broker.
 *
 * @param opts security overrides, a KV to share, a broker id
 * @returns the broker, closed on dispose
 */
export async function openSecureBroker(
  opts: { security?: AppSecurityOptions; kv?: Deno.Kv; id?: number } = {},
): Promise<SecureBroker> {
  const dataDir = await Deno.makeTempDir({ prefix: "rill-sec-" });
  const ownKv = opts.kv === undefined;
  const kv = opts.kv ?? await Deno.openKv(":memory:");
  const broker = await Broker.open({
    id: opts.id ?? 1,
    dataDir,
    kv,
    advertisedUrl: `http://broker-${opts.id ?? 1}.test`,
    log: () => {},
  });
  const audit: string[] = [];
  const app = createApp(broker, {
    auth: true,
    audit: (l) => audit.push(l),
    auditPerSecond: 1e9,
    ...opts.security,
  });
  const keys = new ApiKeyStore(kv);
  const admin = (await keys.bootstrapped())
    ? (await keys.create({ principal: "admin", superuser: true })).token
    : (await keys.bootstrap()).token;
  const call: SecureBroker["call"] = async (method, path, token, body, headers = {}) => {
    const h: Record<string, string> = { ...headers };
    if (token !== undefined) h.authorization = `Bearer ${token}`;
    const init: RequestInit = { method, headers: h };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      h["content-type"] ??= "application/json";
    }
    const res = await app.request(path, init);
    const text = await res.text();
    let parsed: unknown = null;
    if (text !== "") {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    broker,
    app,
    kv,
    admin,
    audit,
    call,
    async key(principal) {
      const res = await call("POST", "/v1/auth/keys", admin, { principal });
      if (res.status !== 201) throw new Error(JSON.stringify(res.body));
      return res.body.token;
    },
    async allow(principal, resourceType, resourceName, operation, extra = {}) {
      const res = await call("POST", "/v1/auth/acls", admin, {
        principal,
        resourceType,
        resourceName,
        operation,
        ...extra,
      });
      if (res.status !== 201) throw new Error(JSON.stringify(res.body));
    },
    async [Symbol.asyncDispose]() {
      await broker.close();
      if (ownKv) kv.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}
