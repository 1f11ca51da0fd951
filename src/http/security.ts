/**
 * Puts the security layer on a broker's app, in this order:
 *
 * 1. URL and header size limits (quotas.ts), before anything else;
 * 2. authentication (auth.ts) for every route but /healthz;
 * 3. quotas: request and byte rates, the cap on long polls and SSE streams (quotas.ts);
 * 4. the admin API for keys and ACLs at `/v1/auth` (routes/auth.ts).
 *
 * Routes authorize what they touch with `authorize()` from auth.ts.
 *
 * @module
 */
import type { Hono } from "hono";
import { type AuditSink, Security } from "./auth.ts";
import { type QuotaConfig, Quotas } from "./quotas.ts";

/** Security settings of an app (all optional: the default is auth off, default limits). */
export interface AppSecurityOptions {
  /** require credentials (`rill broker --auth`) */
  auth?: boolean;
  /** the secret brokers and followers present to fetch as replicas */
  clusterSecret?: string | null;
  /** quota and limit overrides */
  quotas?: Partial<QuotaConfig>;
  /** where audit lines go (default: stderr) */
  audit?: AuditSink;
  /** audit lines a second at most (default 100) */
  auditPerSecond?: number;
  /** how often keys and ACLs are re-checked in KV (default 1000 ms) */
  pollMs?: number;
  /** the clock (tests: key and stream-ticket expiry) */
  now?: () => number;
}

/**
 * The parts installed by {@linkcode useLimits} and {@linkcode useSecurity}.
 *
 * @example
 * ```ts
 * const { security, quotas } = useSecurity(app, kv, {});
 * ```
 */
export interface InstalledSecurity {
  /** authentication and ACL state */
  security: Security;
  /** quota state */
  quotas: Quotas;
}

/**
 * Builds the security state of a broker (shared by its HTTP app and its WebSocket endpoint,
 * src/ws, so both see the same keys, ACLs and quota buckets).
 *
 * @param kv the KV holding keys and ACLs
 * @param opts the settings
 * @returns the state
 * @example
 * ```ts
 * const installed = buildSecurity(broker.kv, { auth: true });
 * const app = createApp(broker, { auth: true }, installed);
 * ```
 */
export function buildSecurity(kv: Deno.Kv, opts: AppSecurityOptions = {}): InstalledSecurity {
  const security = new Security(kv, {
    auth: opts.auth ?? false,
    clusterSecret: opts.clusterSecret ?? null,
    audit: opts.audit,
    auditPerSecond: opts.auditPerSecond,
    pollMs: opts.pollMs,
    now: opts.now,
  });
  return { security, quotas: new Quotas(opts.quotas) };
}

/**
 * Builds the security state (unless given) and mounts the URL/header limits (call before
 * the routes and before CORS).
 *
 * @param app the app
 * @param kv the KV holding keys and ACLs
 * @param opts the settings
 * @param installed state built already by {@linkcode buildSecurity}
 * @returns the state, for {@linkcode useSecurity}
 * @example
 * ```ts
 * const installed = useLimits(app, broker.kv, { auth: true });
 * ```
 */
export function useLimits(
  app: Hono,
  kv: Deno.Kv,
  opts: AppSecurityOptions = {},
  installed: InstalledSecurity = buildSecurity(kv, opts),
): InstalledSecurity {
  app.use("*", installed.quotas.limits());
  return installed;
}

/**
 * Mounts authentication and quotas (call after /healthz, before the other routes).
 *
 * @param app the app
 * @param installed what {@linkcode useLimits} returned
 * @example
 * ```ts
 * useSecurity(app, installed);
 * ```
 */
export function useSecurity(app: Hono, installed: InstalledSecurity): void {
  app.use("*", installed.security.middleware());
  app.use("*", installed.quotas.middleware(installed.security.auth));
}
