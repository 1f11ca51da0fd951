/**
 * Authentication, authorization and audit for the HTTP API.
 *
 * With `auth` on, every request but `GET /healthz`, CORS preflights and
 * `POST /v1/auth/bootstrap` must carry an API key (auth_keys.ts):
 *
 * ```
 * Authorization: Bearer <keyId>.<secret>
 * Authorization: Basic base64(<keyId>:<secret>)
 * ```
 *
 * Missing or bad credentials: 401 UNAUTHENTICATED with `WWW-Authenticate`. Routes then call
 * {@linkcode authorize} for what they touch; a denial is 403 TOPIC_/GROUP_/
 * CLUSTER_AUTHORIZATION_FAILED. Starting an idempotent producer
 * ({@linkcode authorizeIdempotentWrite}) needs `idempotent_write` on the cluster or `write` on
 * some topic, as Kafka since 3.0 (KIP-679). With `auth` off every request is the principal `ANONYMOUS`
 * and {@linkcode authorize} allows everything.
 *
 * Speed: PBKDF2 runs once per key per broker. A verified credential is remembered under the
 * SHA-256 of the presented header (never the secret itself); keys and ACLs are cached in
 * memory and reloaded when the auth version key in KV moves. The version is checked at most
 * every `pollMs` (1 s) in the background, and awaited before answering when the cache is
 * older than `maxStaleMs` (3 s): a revoked key stops working on every broker within seconds.
 * At most two PBKDF2 verifications run at once; a crowd of unknown secrets waiting for one
 * is turned away with 429 rather than queued without bound.
 *
 * Audit: each authentication failure and ACL denial is one JSON line (`{"audit":…}`) with
 * principal (or key id), resource, operation, method and path — never a secret — at most
 * 100 lines a second (the rest are counted in a `suppressed` line).
 *
 * Stream tickets: a browser's `EventSource` cannot send an `Authorization` header, and an API
 * key must never travel in a URL. `POST /v1/auth/tickets` with `{"topic"}` and the key gives a
 * ticket: random, stored in KV (as its SHA-256) for {@linkcode TICKET_MS}, usable on any
 * broker of the cluster. `?ticket=` then authenticates a server-sent-event GET of that topic's
 * records (`/v1/topics/{t}/records` or `/v1/topics/{t}/partitions/{p}/records` with
 * `Accept: text/event-stream`) as the key's principal, limited to reading that topic; a
 * stream started in time runs on. Any other use of a ticket is a 401.
 *
 * Inter-broker trust: a request carrying the cluster secret in `Rill-Cluster-Secret`
 * (compared in constant time) is the broker principal `rill-broker`, a superuser, with no
 * API key needed; a wrong secret is a 401. {@linkcode isTrustedReplica} says whether a
 * request may act as a replica (fetch as a follower, report its log end offset, move the
 * ISR): it must carry the cluster secret, or come from a superuser key.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { createSHA256, type IHasher } from "hash-wasm";
import {
  ApiKeyStore,
  CLUSTER_SECRET_HEADER,
  constantTimeEqual,
  keyUsable,
  parseToken,
  type StoredApiKey,
  verifySecret,
} from "../coordination/auth_keys.ts";
import {
  AclStore,
  CLUSTER_RESOURCE,
  evaluateAcls,
  evaluateAclsOnAny,
  type Operation,
  type Resource,
  type ResourceType,
  type StoredAcl,
} from "../coordination/acls.ts";
import { type ErrorCode, RillError } from "../protocol/errors.ts";

/** The header a replica sends the cluster secret in (defined in auth_keys.ts). */
export { CLUSTER_SECRET_HEADER };

/** The principal of requests carrying the cluster secret (other brokers of the cluster). */
export const BROKER_PRINCIPAL = "rill-broker";

/** The principal of every request when auth is off. */
export const ANONYMOUS = "ANONYMOUS";

/** Where audit lines go: one JSON object a line. */
export type AuditSink = (line: string) => void;

/** Settings of {@linkcode Security}. */
export interface SecurityOptions {
  /** require credentials on every route but /healthz */
  auth: boolean;
  /** the secret replicas present; null or absent: only superusers (or anyone with auth off) */
  clusterSecret?: string | null;
  /** how often the auth version is checked; default 1000 ms */
  pollMs?: number;
  /** the cache is refreshed before answering when older than this; default 3000 ms */
  maxStaleMs?: number;
  /** where audit lines go (default: stderr) */
  audit?: AuditSink;
  /** audit lines a second at most (default 100; the rest are counted in one line) */
  auditPerSecond?: number;
  /** the clock */
  now?: () => number;
}

/** The authenticated caller of a request. */
export interface Principal {
  /** the principal name (`ANONYMOUS` with auth off) */
  name: string;
  /** passes every ACL check */
  superuser: boolean;
  /** the key used, if any */
  keyId: string | null;
}

/** Why authentication failed (never the secret). */
export interface AuthFailure {
  /** a short reason, e.g. "wrong secret" */
  error: string;
  /** the key id presented, when there was one */
  keyId?: string;
  /** refused for load (429), not for the credentials */
  throttled?: boolean;
}

interface RequestAuth {
  security: Security;
  principal: Principal;
  /** a stream ticket's limit: reading this topic only */
  onlyReadTopic?: string;
}

/** How long a stream ticket may start streams: 60 s. */
export const TICKET_MS = 60_000;
const TICKET_PATH = /^\/v1\/topics\/([^/]+)\/(?:partitions\/[^/]+\/)?records$/;

const requests = new WeakMap<object, RequestAuth>();
const encoder = new TextEncoder();
const FAILED_CODE: Record<Resource["type"], ErrorCode> = {
  topic: "TOPIC_AUTHORIZATION_FAILED",
  group: "GROUP_AUTHORIZATION_FAILED",
  cluster: "CLUSTER_AUTHORIZATION_FAILED",
};
const MAX_VERIFYING = 2;
const MAX_WAITING = 64;
const CACHE_LIMIT = 10_000;
const AUDIT_PER_SECOND = 100;

// SHA-256 of presented credentials, the key of the verified-credential cache: synchronous
// (hash-wasm) so that the cache-hit path costs about a microsecond and keeps request order.
let hasher: IHasher | null = null;
const hasherReady = createSHA256().then((h) => {
  hasher = h;
});

function sha256Hex(text: string): string {
  return hasher!.init().update(text).digest("hex");
}

/**
 * The security state of one broker: settings, the cached keys and ACLs, the verified
 * credential cache and the audit log.
 *
 * @example
 * ```ts
 * const security = new Security(broker.kv, { auth: true, clusterSecret: "s3cr3t" });
 * app.use("*", security.middleware());
 * ```
 */
export class Security {
  /** whether credentials are required */
  readonly auth: boolean;
  /** the KV store of keys */
  readonly keys: ApiKeyStore;
  /** the KV store of ACLs */
  readonly acls: AclStore;
  readonly #secret: Uint8Array | null;
  readonly #pollMs: number;
  readonly #maxStaleMs: number;
  readonly #audit: (line: string) => void;
  readonly #auditPerSecond: number;
  readonly #now: () => number;
  readonly #kv: Deno.Kv;
  #keys = new Map<string, StoredApiKey>();
  #aclsByPrincipal = new Map<string, StoredAcl[]>();
  #version = -1n;
  #loadedMs = -Infinity;
  #refreshing: Promise<void> | null = null;
  readonly #verified = new Map<string, { keyId: string; hash: string }>();
  readonly #inflight = new Map<string, Promise<boolean>>();
  readonly #decisions = new Map<string, boolean>();
  /** allowedOnAny()'s decisions, by principal, type and operation */
  readonly #anyDecisions = new Map<string, boolean>();
  #verifying = 0;
  readonly #waiting: (() => void)[] = [];
  #auditSecond = 0;
  #auditCount = 0;
  #auditSuppressed = 0;

  /**
   * @param kv the KV holding keys and ACLs
   * @param opts auth switch, cluster secret, cache timing, audit sink
   */
  constructor(kv: Deno.Kv, opts: SecurityOptions) {
    this.#kv = kv;
    this.auth = opts.auth;
    this.#now = opts.now ?? Date.now;
    this.keys = new ApiKeyStore(kv, this.#now);
    this.acls = new AclStore(kv, this.#now);
    this.#secret = opts.clusterSecret ? encoder.encode(opts.clusterSecret) : null;
    this.#pollMs = opts.pollMs ?? 1000;
    this.#maxStaleMs = opts.maxStaleMs ?? 3000;
    this.#audit = opts.audit ?? ((line) => console.error(line));
    this.#auditPerSecond = opts.auditPerSecond ?? AUDIT_PER_SECOND;
  }

  /** Whether a cluster secret is configured. */
  get hasClusterSecret(): boolean {
    return this.#secret !== null;
  }

  /**
   * The middleware that authenticates every request (mount it on `*` before the routes).
   *
   * @returns a Hono middleware
   */
  middleware(): MiddlewareHandler {
    return async (c, next) => {
      const path = c.req.path;
      if (
        !this.auth || c.req.method === "OPTIONS" || path === "/healthz" ||
        (path === "/v1/auth/bootstrap" && c.req.method === "POST")
      ) {
        requests.set(c.req, {
          security: this,
          principal: { name: ANONYMOUS, superuser: !this.auth, keyId: null },
        });
        return await next();
      }
      const ticket = c.req.query("ticket");
      if (ticket !== undefined) {
        const scoped = await this.#ticketPrincipal(c, ticket);
        if ("error" in scoped) {
          this.#auditLine({
            audit: "authentication_failed",
            reason: scoped.error,
            keyId: null,
            method: c.req.method,
            path: path.slice(0, 300),
          });
          return c.json(
            new RillError("UNAUTHENTICATED", `The stream ticket ${scoped.error}`).toJSON(),
            401,
          );
        }
        requests.set(c.req, {
          security: this,
          principal: scoped.principal,
          onlyReadTopic: scoped.topic,
        });
        return await next();
      }
      const presentedSecret = c.req.header(CLUSTER_SECRET_HEADER);
      const result = presentedSecret !== undefined
        ? this.#brokerPrincipal(presentedSecret)
        : await this.authenticate(c.req.header("authorization"));
      if ("error" in result) {
        this.#auditLine({
          audit: "authentication_failed",
          reason: result.error,
          keyId: result.keyId ?? null,
          method: c.req.method,
          path: path.slice(0, 300),
        });
        const status = result.throttled ? 429 : 401;
        const err = result.throttled
          ? new RillError("THROTTLING_QUOTA_EXCEEDED", "Too many credential checks; retry later")
          : new RillError("UNAUTHENTICATED", "Missing or bad credentials");
        return c.json(err.toJSON(), status, {
          "WWW-Authenticate": `Bearer realm="rill", Basic realm="rill"`,
          ...(result.throttled ? { "Retry-After": "1" } : {}),
        });
      }
      requests.set(c.req, { security: this, principal: result });
      return await next();
    };
  }

  /**
   * Issues a stream ticket (see the module description) for a principal already allowed to
   * read `topic`.
   *
   * @param principal who asks (the ticket acts as them)
   * @param topic the topic the ticket may stream
   * @returns the ticket and when it stops starting streams
   */
  async issueTicket(
    principal: Principal,
    topic: string,
  ): Promise<{ ticket: string; topic: string; expiresMs: number }> {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    const ticket = "rt_" + btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-")
      .replace(/\//g, "_").replace(/=+$/, "");
    const expiresMs = this.#now() + TICKET_MS;
    if (hasher === null) await hasherReady;
    await this.#kv.set(
      ["rill", "stream_tickets", sha256Hex(ticket)],
      {
        principal: principal.name,
        superuser: principal.superuser,
        keyId: principal.keyId,
        topic,
        expiresMs,
      },
      { expireIn: TICKET_MS },
    );
    return { ticket, topic, expiresMs };
  }

  async #ticketPrincipal(
    c: Context,
    ticket: string,
  ): Promise<{ principal: Principal; topic: string } | { error: string }> {
    const m = TICKET_PATH.exec(c.req.path);
    if (
      c.req.method !== "GET" || m === null ||
      !(c.req.header("accept") ?? "").includes("text/event-stream")
    ) {
      return { error: "only starts a server-sent-event stream of a topic's records" };
    }
    if (ticket.length > 200 || !ticket.startsWith("rt_")) return { error: "is malformed" };
    if (hasher === null) await hasherReady;
    const entry = await this.#kv.get<
      {
        principal: string;
        superuser: boolean;
        keyId: string | null;
        topic: string;
        expiresMs: number;
      }
    >(["rill", "stream_tickets", sha256Hex(ticket)]);
    const v = entry.value;
    if (v === null || v.expiresMs < this.#now()) return { error: "is unknown or expired" };
    let topic: string;
    try {
      topic = decodeURIComponent(m[1]);
    } catch {
      return { error: "does not match the path" };
    }
    if (topic !== v.topic) return { error: `is for topic "${v.topic.slice(0, 100)}"` };
    // A key revoked since the ticket was issued: the ticket dies with it.
    await this.#fresh();
    if (v.keyId !== null) {
      const key = this.#keys.get(v.keyId);
      if (!key || !keyUsable(key, this.#now())) {
        return { error: "belongs to a key no longer valid" };
      }
    }
    return {
      principal: { name: v.principal, superuser: v.superuser, keyId: v.keyId },
      topic: v.topic,
    };
  }

  /**
   * Authenticates an `Authorization` header value.
   *
   * @param header the header value, or undefined
   * @returns the principal, or why it failed (never the secret)
   */
  async authenticate(
    header: string | undefined,
  ): Promise<Principal | AuthFailure> {
    if (header === undefined || header === "") return { error: "missing credentials" };
    if (header.length > 1024) return { error: "malformed credentials" };
    let presented: { keyId: string; secret: string } | null = null;
    const space = header.indexOf(" ");
    const scheme = header.slice(0, space).toLowerCase();
    const value = header.slice(space + 1).trim();
    if (scheme === "bearer") presented = parseToken(value);
    else if (scheme === "basic") {
      try {
        const decoded = atob(value);
        const colon = decoded.indexOf(":");
        if (colon > 0) {
          presented = parseToken(`${decoded.slice(0, colon)}.${decoded.slice(colon + 1)}`);
        }
      } catch {
        presented = null;
      }
    }
    if (space < 0 || presented === null) return { error: "malformed credentials" };
    await this.#fresh();
    const key = this.#keys.get(presented.keyId);
    if (!key) return { error: "unknown key", keyId: presented.keyId };
    if (!keyUsable(key, this.#now())) {
      return { error: key.revokedMs !== null ? "revoked key" : "expired key", keyId: key.keyId };
    }
    if (hasher === null) await hasherReady;
    const cacheKey = sha256Hex(`${presented.keyId}.${presented.secret}`);
    const cached = this.#verified.get(cacheKey);
    if (cached === undefined || cached.keyId !== key.keyId || cached.hash !== key.hash) {
      // One PBKDF2 per distinct credential at a time: a burst of requests with the same
      // new key shares it.
      let check = this.#inflight.get(cacheKey);
      if (check === undefined) {
        if (this.#verifying >= MAX_VERIFYING && this.#waiting.length >= MAX_WAITING) {
          return { error: "too many verifications", keyId: key.keyId, throttled: true };
        }
        check = this.#verify(key, presented.secret).finally(() => this.#inflight.delete(cacheKey));
        this.#inflight.set(cacheKey, check);
      }
      if (!await check) return { error: "wrong secret", keyId: key.keyId };
      if (this.#verified.size >= CACHE_LIMIT) this.#verified.clear();
      this.#verified.set(cacheKey, { keyId: key.keyId, hash: key.hash });
    }
    return { name: key.principal, superuser: key.superuser, keyId: key.keyId };
  }

  // Brokers and followers of the cluster authenticate with the cluster secret alone: they
  // are the inter-broker principal, a superuser (as Kafka's inter-broker principal usually is).
  #brokerPrincipal(presented: string): Principal | AuthFailure {
    if (!this.clusterSecretMatches(presented)) return { error: "wrong cluster secret" };
    return { name: BROKER_PRINCIPAL, superuser: true, keyId: null };
  }

  async #verify(key: StoredApiKey, secret: string): Promise<boolean> {
    if (this.#verifying >= MAX_VERIFYING) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#verifying++;
    try {
      return await verifySecret(key, secret);
    } finally {
      this.#verifying--;
      this.#waiting.shift()?.();
    }
  }

  /**
   * Whether a principal may do an operation on a resource (no audit). Creating a topic is
   * also allowed by `create` on the cluster, as in Kafka.
   *
   * @param principal the principal
   * @param resource the resource
   * @param operation the operation
   * @returns true when allowed
   */
  allowed(principal: Principal, resource: Resource, operation: Operation): boolean {
    if (!this.auth || principal.superuser) return true;
    const memo = `${principal.name}\u0000${resource.type}\u0000${resource.name}\u0000${operation}`;
    const hit = this.#decisions.get(memo);
    if (hit !== undefined) return hit;
    const acls = [
      ...this.#aclsByPrincipal.get(principal.name) ?? [],
      ...this.#aclsByPrincipal.get("*") ?? [],
    ];
    let ok = evaluateAcls(acls, principal.name, resource, operation);
    if (!ok && resource.type === "topic" && operation === "create") {
      ok = evaluateAcls(
        acls,
        principal.name,
        { type: "cluster", name: CLUSTER_RESOURCE },
        "create",
      );
    }
    if (this.#decisions.size >= CACHE_LIMIT) this.#decisions.clear();
    this.#decisions.set(memo, ok);
    return ok;
  }

  /**
   * Whether a principal may do an operation on at least one resource of a type (no audit),
   * as Kafka's `authorizeByResourceType` ({@linkcode evaluateAclsOnAny}).
   *
   * @param principal the principal
   * @param type the resource type
   * @param operation the operation
   * @returns true when some resource of the type allows it
   */
  allowedOnAny(principal: Principal, type: ResourceType, operation: Operation): boolean {
    if (!this.auth || principal.superuser) return true;
    const memo = `${principal.name}\u0000${type}\u0000${operation}`;
    const hit = this.#anyDecisions.get(memo);
    if (hit !== undefined) return hit;
    const acls = [
      ...this.#aclsByPrincipal.get(principal.name) ?? [],
      ...this.#aclsByPrincipal.get("*") ?? [],
    ];
    const ok = evaluateAclsOnAny(acls, principal.name, type, operation);
    if (this.#anyDecisions.size >= CACHE_LIMIT) this.#anyDecisions.clear();
    this.#anyDecisions.set(memo, ok);
    return ok;
  }

  /**
   * Checks the cluster secret of a request in constant time.
   *
   * @param presented the header value
   * @returns true when it equals the configured secret
   */
  clusterSecretMatches(presented: string | undefined): boolean {
    if (this.#secret === null || presented === undefined) return false;
    return constantTimeEqual(encoder.encode(presented), this.#secret);
  }

  /**
   * Writes one audit line (rate-limited).
   *
   * @param fields the JSON fields
   */
  auditDenied(fields: Record<string, unknown>): void {
    this.#auditLine(fields);
  }

  /** Reloads keys and ACLs now (after this broker changed them). */
  async reload(): Promise<void> {
    this.#loadedMs = -Infinity;
    await this.#fresh();
  }

  #auditLine(fields: Record<string, unknown>): void {
    const second = Math.floor(this.#now() / 1000);
    if (second !== this.#auditSecond) {
      if (this.#auditSuppressed > 0) {
        this.#audit(JSON.stringify({ audit: "suppressed", lines: this.#auditSuppressed }));
      }
      this.#auditSecond = second;
      this.#auditCount = 0;
      this.#auditSuppressed = 0;
    }
    if (++this.#auditCount > this.#auditPerSecond) {
      this.#auditSuppressed++;
      return;
    }
    this.#audit(JSON.stringify({ time: new Date(this.#now()).toISOString(), ...fields }));
  }

  async #fresh(): Promise<void> {
    const age = this.#now() - this.#loadedMs;
    if (age < this.#pollMs) return;
    const run = this.#refreshing ??= this.#load().finally(() => this.#refreshing = null);
    if (age >= this.#maxStaleMs) await run;
    else run.catch(() => {}); // in the background; the next request sees it
  }

  async #load(): Promise<void> {
    const started = this.#now();
    const version = await this.keys.version();
    if (version !== this.#version) {
      const [keys, acls] = await Promise.all([this.keys.listStored(), this.acls.list()]);
      this.#keys = new Map(keys.map((k) => [k.keyId, k]));
      const byPrincipal = new Map<string, StoredAcl[]>();
      for (const a of acls) {
        const list = byPrincipal.get(a.principal) ?? [];
        list.push(a);
        byPrincipal.set(a.principal, list);
      }
      this.#aclsByPrincipal = byPrincipal;
      this.#decisions.clear();
      this.#anyDecisions.clear();
      this.#version = version;
    }
    this.#loadedMs = started;
  }
}

/**
 * The principal of a request (`ANONYMOUS` when no security middleware ran).
 *
 * @param c the request context
 * @returns the principal
 * @example
 * ```ts
 * const who = principalOf(c).name;
 * ```
 */
export function principalOf(c: Context): Principal {
  return requests.get(c.req)?.principal ?? { name: ANONYMOUS, superuser: true, keyId: null };
}

/**
 * Requires the request's principal to have `operation` on `resource`; call it first thing
 * in a handler. Allows everything when auth is off.
 *
 * @param c the request context
 * @param resource what the handler touches, e.g. `{ type: "topic", name }`
 * @param operation what it does to it
 * @throws {RillError} TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED or
 *   CLUSTER_AUTHORIZATION_FAILED (403), audited
 * @example
 * ```ts
 * authorize(c, { type: "topic", name: c.req.param("topic") }, "write");
 * ```
 */
export function authorize(c: Context, resource: Resource, operation: Operation): void {
  const r = requests.get(c.req);
  const inScope = r?.onlyReadTopic === undefined ||
    (resource.type === "topic" && resource.name === r.onlyReadTopic && operation === "read");
  if (r === undefined || (inScope && r.security.allowed(r.principal, resource, operation))) return;
  r.security.auditDenied({
    audit: "authorization_denied",
    principal: r.principal.name,
    keyId: r.principal.keyId,
    resourceType: resource.type,
    resourceName: String(resource.name).slice(0, 255),
    operation,
    method: c.req.method,
    path: c.req.path.slice(0, 300),
  });
  const what = resource.type === "cluster"
    ? "the cluster"
    : `${resource.type} "${String(resource.name).slice(0, 255)}"`;
  throw new RillError(
    FAILED_CODE[resource.type],
    `Principal "${r.principal.name}" is not authorized to ${operation} ${what}`,
  );
}

/**
 * Requires the right to start an idempotent producer (`POST /v1/producers`, Kafka's
 * InitProducerId without a transactional id): `idempotent_write` on the cluster, or `write`
 * on at least one topic (KIP-679). Allows everything when auth is off.
 *
 * @param c the request context
 * @throws {RillError} CLUSTER_AUTHORIZATION_FAILED (403), audited
 * @example
 * ```ts
 * app.post("/v1/producers", (c) => { authorizeIdempotentWrite(c); … });
 * ```
 */
export function authorizeIdempotentWrite(c: Context): void {
  const r = requests.get(c.req);
  if (r === undefined) return;
  const cluster: Resource = { type: "cluster", name: CLUSTER_RESOURCE };
  const s = r.security;
  if (
    s.allowed(r.principal, cluster, "idempotent_write") ||
    s.allowedOnAny(r.principal, "topic", "write")
  ) return;
  s.auditDenied({
    audit: "authorization_denied",
    principal: r.principal.name,
    keyId: r.principal.keyId,
    resourceType: "cluster",
    resourceName: CLUSTER_RESOURCE,
    operation: "idempotent_write",
    method: c.req.method,
    path: c.req.path.slice(0, 300),
  });
  throw new RillError(
    "CLUSTER_AUTHORIZATION_FAILED",
    `Principal "${r.principal.name}" may not start an idempotent producer: it needs idempotent_write on the cluster or write on a topic`,
  );
}

/**
 * Requires `operation` on every named resource of one type (e.g. the topics of a join).
 *
 * @param c the request context
 * @param type the resource type
 * @param names the names
 * @param operation the operation
 * @throws {RillError} as {@linkcode authorize}
 * @example
 * ```ts
 * authorizeAll(c, "topic", ["a", "b"], "read");
 * ```
 */
export function authorizeAll(
  c: Context,
  type: Resource["type"],
  names: Iterable<string>,
  operation: Operation,
): void {
  for (const name of new Set(names)) authorize(c, { type, name }, operation);
}

/**
 * Whether the request's principal may describe a resource (for filtering listings; no
 * audit line).
 *
 * @param c the request context
 * @param resource the resource
 * @returns true when allowed
 * @example
 * ```ts
 * topics.filter((t) => canDescribe(c, { type: "topic", name: t.name }));
 * ```
 */
export function canDescribe(c: Context, resource: Resource): boolean {
  const r = requests.get(c.req);
  return r === undefined || r.security.allowed(r.principal, resource, "describe");
}

/**
 * Keeps the committed offsets of topics the request's principal may describe, with their
 * total lag recomputed (Kafka filters a group's offsets the same way).
 *
 * @param c the request context
 * @param fetched offsets with their lag, and the total
 * @returns the visible offsets and their total lag
 * @example
 * ```ts
 * c.json(visibleOffsets(c, await offsets.fetch(groupId)));
 * ```
 */
export function visibleOffsets<T extends { topic: string; lag: number | null }>(
  c: Context,
  fetched: { offsets: T[]; totalLag: number },
): { offsets: T[]; totalLag: number } {
  const r = requests.get(c.req);
  if (r === undefined || !r.security.auth || r.principal.superuser) return fetched;
  const offsets = fetched.offsets.filter((o) => canDescribe(c, { type: "topic", name: o.topic }));
  return { offsets, totalLag: offsets.reduce((sum, o) => sum + (o.lag ?? 0), 0) };
}

/**
 * Whether a request may act as a replica (fetch as a follower, report its log end offset,
 * affect the ISR): it carries the cluster secret in `Rill-Cluster-Secret`, or comes from a
 * superuser key. With auth off and no cluster secret configured, every request may (a
 * local, open cluster).
 *
 * @param c the request context
 * @returns true when trusted
 * @example
 * ```ts
 * if (c.req.query("replicaId") !== undefined && !isTrustedReplica(c)) throw denied;
 * ```
 */
export function isTrustedReplica(c: Context): boolean {
  const r = requests.get(c.req);
  if (r === undefined) return true;
  const s = r.security;
  if (s.clusterSecretMatches(c.req.header(CLUSTER_SECRET_HEADER))) return true;
  if (!s.hasClusterSecret && !s.auth) return true;
  return s.auth && r.principal.superuser;
}

/**
 * Throws unless {@linkcode isTrustedReplica}: for the replica parameters of a fetch.
 *
 * @param c the request context
 * @throws {RillError} CLUSTER_AUTHORIZATION_FAILED, audited
 * @example
 * ```ts
 * if (c.req.query("replicaId") !== undefined) requireTrustedReplica(c);
 * ```
 */
export function requireTrustedReplica(c: Context): void {
  if (isTrustedReplica(c)) return;
  const r = requests.get(c.req)!;
  r.security.auditDenied({
    audit: "replica_denied",
    principal: r.principal.name,
    keyId: r.principal.keyId,
    method: c.req.method,
    path: c.req.path.slice(0, 300),
  });
  throw new RillError(
    "CLUSTER_AUTHORIZATION_FAILED",
    "Only brokers of the cluster (with the cluster secret) may fetch as a replica",
  );
}
