/**
 * API keys in Deno KV: the credentials of principals once a broker runs with `--auth`.
 *
 * A key is shown to its owner once, as a token `<keyId>.<secret>`, sent either as
 * `Authorization: Bearer <keyId>.<secret>` or as HTTP Basic with the key id as user name and
 * the secret as password. KV holds only a salted slow hash of the secret.
 *
 * KV layout (under `["rill", "auth", …]`, next to the keys of kv_keys.ts):
 *
 * | key                                   | value                                             |
 * | ------------------------------------- | ------------------------------------------------- |
 * | `["rill", "auth", "keys", <keyId>]`   | {@linkcode StoredApiKey}                           |
 * | `["rill", "auth", "acls", <aclId>]`   | `StoredAcl` (acls.ts)                             |
 * | `["rill", "auth", "version"]`         | `Deno.KvU64`, bumped by every key or ACL change   |
 * | `["rill", "auth", "bootstrapped"]`    | ms since the epoch: the first admin key was made  |
 * | `["rill", "auth", "bootstrap-token"]` | {@linkcode StoredBootstrapToken} (one use)        |
 * | `["rill", "auth", "cluster-secret"]`  | the cluster secret brokers and followers share    |
 *
 * Hash: PBKDF2-HMAC-SHA256 (WebCrypto), {@linkcode PBKDF2_ITERATIONS} iterations, a random
 * 16-byte salt per key, 32-byte output, stored base64; compared in constant time. Brokers
 * poll the version key to see revocations (see `src/http/auth.ts`): a revoked key stops
 * working on every broker within a poll interval.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { kvRetry } from "./kv_retry.ts";
import { ROOT } from "./kv_keys.ts";

/**
 * The header brokers and followers send the cluster secret in (to the leaders they fetch
 * from); importable by the broker layer, which must not import src/http/.
 */
export const CLUSTER_SECRET_HEADER = "rill-cluster-secret";

/** PBKDF2-SHA256 work factor (≈ 55 ms per hash on the development machine). */
export const PBKDF2_ITERATIONS = 210_000;

/** A key as stored in KV (never the secret). */
export interface StoredApiKey {
  /** public id, `rk_` and 16 hex digits */
  keyId: string;
  /** the principal the key authenticates as */
  principal: string;
  /** a superuser passes every ACL check */
  superuser: boolean;
  /** free text shown by `rill auth keys list` */
  description: string;
  /** PBKDF2 salt, base64 */
  salt: string;
  /** PBKDF2-SHA256 output, base64 */
  hash: string;
  /** PBKDF2 iterations */
  iterations: number;
  /** creation time, ms since the epoch */
  createdMs: number;
  /** expiry time, or null for none */
  expiresMs: number | null;
  /** revocation time, or null while valid */
  revokedMs: number | null;
}

/** What listings show of a key. */
export type ApiKeyInfo = Omit<StoredApiKey, "salt" | "hash" | "iterations">;

/** A newly created key: its token is known only now. */
export interface CreatedApiKey {
  /** the stored record (without secret) */
  key: ApiKeyInfo;
  /** the secret part */
  secret: string;
  /** `<keyId>.<secret>`, the bearer token */
  token: string;
}

/** The one-time bootstrap token as stored (hashed). */
export interface StoredBootstrapToken {
  /** PBKDF2 salt, base64 */
  salt: string;
  /** PBKDF2 output, base64 */
  hash: string;
  /** PBKDF2 iterations */
  iterations: number;
  /** after this, the token no longer works */
  expiresMs: number;
}

/**
 * Key of one API key.
 *
 * @param keyId the key id
 * @returns the KV key
 * @example
 * ```ts
 * apiKeyKey("rk_0123456789abcdef"); // ["rill", "auth", "keys", "rk_0123456789abcdef"]
 * ```
 */
export function apiKeyKey(keyId: string): Deno.KvKey {
  return [ROOT, "auth", "keys", keyId];
}

/**
 * Key of the auth version counter, bumped by every key or ACL change.
 *
 * @returns the KV key
 * @example
 * ```ts
 * await kv.get(authVersionKey());
 * ```
 */
export function authVersionKey(): Deno.KvKey {
  return [ROOT, "auth", "version"];
}

/**
 * Key of the cluster secret stored in KV (used when no flag or environment gives one).
 *
 * @returns the KV key
 * @example
 * ```ts
 * await kv.get<string>(clusterSecretKey());
 * ```
 */
export function clusterSecretKey(): Deno.KvKey {
  return [ROOT, "auth", "cluster-secret"];
}

const BOOTSTRAPPED_KEY: Deno.KvKey = [ROOT, "auth", "bootstrapped"];
const BOOTSTRAP_TOKEN_KEY: Deno.KvKey = [ROOT, "auth", "bootstrap-token"];
const KEYS_PREFIX: Deno.KvKey = [ROOT, "auth", "keys"];
const KEY_ID = /^rk_[0-9a-f]{16}$/;
const PRINCIPAL = /^[A-Za-z0-9._@:-]{1,128}$/;
const encoder = new TextEncoder();

/**
 * Checks a principal name: 1–128 characters of `[A-Za-z0-9._@:-]`.
 *
 * @param name the name
 * @param field the field, for the message
 * @returns the name
 * @throws {RillError} INVALID_REQUEST
 * @example
 * ```ts
 * validatePrincipal("alice"); // "alice"
 * ```
 */
export function validatePrincipal(name: unknown, field = "principal"): string {
  if (typeof name !== "string" || !PRINCIPAL.test(name)) {
    throw new RillError(
      "INVALID_REQUEST",
      `"${field}" must be 1 to 128 characters of letters, digits and ._@:-`,
    );
  }
  return name;
}

/**
 * Splits a presented credential into key id and secret: a bearer token `<keyId>.<secret>`
 * or the user and password of HTTP Basic.
 *
 * @param token the bearer token
 * @returns key id and secret, or null when the shape is wrong
 * @example
 * ```ts
 * parseToken("rk_0123456789abcdef.s3cr3t"); // { keyId: "rk_0123456789abcdef", secret: "s3cr3t" }
 * ```
 */
export function parseToken(token: string): { keyId: string; secret: string } | null {
  const dot = token.indexOf(".");
  if (dot < 0) return null;
  const keyId = token.slice(0, dot);
  const secret = token.slice(dot + 1);
  if (!KEY_ID.test(keyId) || secret.length === 0 || secret.length > 256) return null;
  return { keyId, secret };
}

/**
 * PBKDF2-HMAC-SHA256 of a secret.
 *
 * @param secret the secret
 * @param salt the salt
 * @param iterations the work factor
 * @returns the 32-byte hash
 * @example
 * ```ts
 * const h = await pbkdf2("s3cr3t", new Uint8Array(16), 210_000);
 * ```
 */
export async function pbkdf2(
  secret: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  const material = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: salt as Uint8Array<ArrayBuffer>, iterations },
    material,
    256,
  );
  return new Uint8Array(bits);
}

/**
 * Compares two byte strings in time that depends only on their lengths.
 *
 * @param a one
 * @param b the other
 * @returns whether they are equal
 * @example
 * ```ts
 * constantTimeEqual(new Uint8Array([1]), new Uint8Array([1])); // true
 * ```
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  // The lengths are not secret (hashes are 32 bytes); the contents are compared fully.
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * Random bytes as unpadded base64url.
 *
 * @param bytes how many random bytes
 * @returns the text
 * @example
 * ```ts
 * randomSecret(32).length; // 43
 * ```
 */
export function randomSecret(bytes = 32): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...b)).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

function toB64(b: Uint8Array): string {
  return btoa(String.fromCharCode(...b));
}

function fromB64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

async function hashSecret(
  secret: string,
): Promise<{ salt: string; hash: string; iterations: number }> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await pbkdf2(secret, salt, PBKDF2_ITERATIONS);
  return { salt: toB64(salt), hash: toB64(hash), iterations: PBKDF2_ITERATIONS };
}

/**
 * Checks a presented secret against a stored hash (slow: one PBKDF2), in constant time.
 *
 * @param stored salt, hash and iterations
 * @param secret the presented secret
 * @returns whether it matches
 * @example
 * ```ts
 * if (await verifySecret(record, secret)) console.log("ok");
 * ```
 */
export async function verifySecret(
  stored: { salt: string; hash: string; iterations: number },
  secret: string,
): Promise<boolean> {
  const got = await pbkdf2(secret, fromB64(stored.salt), stored.iterations);
  return constantTimeEqual(got, fromB64(stored.hash));
}

function info(k: StoredApiKey): ApiKeyInfo {
  const { salt: _s, hash: _h, iterations: _i, ...rest } = k;
  return rest;
}

/**
 * Whether a key may be used at `now`: not revoked, not expired.
 *
 * @param k the key
 * @param now ms since the epoch
 * @returns true when usable
 * @example
 * ```ts
 * keyUsable(record, Date.now());
 * ```
 */
export function keyUsable(k: Pick<StoredApiKey, "revokedMs" | "expiresMs">, now: number): boolean {
  return k.revokedMs === null && (k.expiresMs === null || k.expiresMs > now);
}

/**
 * API keys and the bootstrap of the first admin key.
 *
 * @example
 * ```ts
 * const keys = new ApiKeyStore(await Deno.openKv(":memory:"));
 * const { token } = await keys.create({ principal: "alice" });
 * ```
 */
export class ApiKeyStore {
  /**
   * @param kv the shared KV
   * @param now the clock
   */
  constructor(readonly kv: Deno.Kv, private readonly now: () => number = Date.now) {}

  /**
   * Creates a key for a principal.
   *
   * @param req principal, superuser flag, expiry, description
   * @returns the key with its token (shown once)
   * @throws {RillError} INVALID_REQUEST on a bad principal, description or expiry
   */
  async create(
    req: {
      principal: string;
      superuser?: boolean;
      expiresMs?: number | null;
      description?: string;
    },
  ): Promise<CreatedApiKey> {
    validatePrincipal(req.principal);
    const description = req.description ?? "";
    if (typeof description !== "string" || description.length > 200) {
      throw new RillError("INVALID_REQUEST", `"description" must be at most 200 characters`);
    }
    const expiresMs = req.expiresMs ?? null;
    if (expiresMs !== null && (!Number.isSafeInteger(expiresMs) || expiresMs <= this.now())) {
      throw new RillError("INVALID_REQUEST", `"expiresMs" must be a time in the future`);
    }
    const keyId = "rk_" +
      Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0"))
        .join("");
    const secret = randomSecret();
    const record: StoredApiKey = {
      keyId,
      principal: req.principal,
      superuser: req.superuser === true,
      description,
      ...await hashSecret(secret),
      createdMs: this.now(),
      expiresMs,
      revokedMs: null,
    };
    await kvRetry(() =>
      this.kv.atomic()
        .check({ key: apiKeyKey(keyId), versionstamp: null })
        .set(apiKeyKey(keyId), record)
        .sum(authVersionKey(), 1n)
        .commit()
    );
    return { key: info(record), secret, token: `${keyId}.${secret}` };
  }

  /**
   * Lists every key (without hashes), oldest first.
   *
   * @returns the keys
   */
  async list(): Promise<ApiKeyInfo[]> {
    return (await this.listStored()).map(info).sort((a, b) => a.createdMs - b.createdMs);
  }

  /**
   * Lists every key with its hash (for the broker's cache).
   *
   * @returns the stored keys
   */
  async listStored(): Promise<StoredApiKey[]> {
    const out: StoredApiKey[] = [];
    for await (const e of this.kv.list<StoredApiKey>({ prefix: KEYS_PREFIX })) out.push(e.value);
    return out;
  }

  /**
   * Revokes a key: it stops working on every broker within a poll interval.
   *
   * @param keyId the key id
   * @returns the key as revoked
   * @throws {RillError} NOT_FOUND when there is no such key
   */
  async revoke(keyId: string): Promise<ApiKeyInfo> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const entry = await this.kv.get<StoredApiKey>(apiKeyKey(keyId));
      if (entry.value === null) {
        throw new RillError("NOT_FOUND", `API key "${keyId.slice(0, 40)}" does not exist`);
      }
      if (entry.value.revokedMs !== null) return info(entry.value);
      const next = { ...entry.value, revokedMs: this.now() };
      const res = await kvRetry(() =>
        this.kv.atomic().check(entry).set(apiKeyKey(keyId), next).sum(authVersionKey(), 1n)
          .commit()
      );
      if (res.ok) return info(next);
    }
    throw new RillError(
      "COORDINATOR_NOT_AVAILABLE",
      `Could not revoke "${keyId}": too much contention`,
    );
  }

  /**
   * The auth version (bumped by every key or ACL change).
   *
   * @returns the counter
   */
  async version(): Promise<bigint> {
    const v = await this.kv.get<Deno.KvU64>(authVersionKey());
    return v.value?.value ?? 0n;
  }

  /**
   * Creates the first superuser key, once per cluster: a second call fails.
   *
   * @param principal the admin principal (default "admin")
   * @returns the key with its token
   * @throws {RillError} CLUSTER_AUTHORIZATION_FAILED when the cluster was bootstrapped already
   */
  async bootstrap(principal = "admin"): Promise<CreatedApiKey> {
    const claimed = await kvRetry(() =>
      this.kv.atomic().check({ key: BOOTSTRAPPED_KEY, versionstamp: null })
        .set(BOOTSTRAPPED_KEY, this.now()).delete(BOOTSTRAP_TOKEN_KEY).commit()
    );
    if (!claimed.ok) {
      throw new RillError(
        "CLUSTER_AUTHORIZATION_FAILED",
        "The cluster was bootstrapped already; create keys with an admin key",
      );
    }
    return await this.create({ principal, superuser: true, description: "bootstrap admin" });
  }

  /**
   * Whether the first admin key was made.
   *
   * @returns true after {@linkcode bootstrap}
   */
  async bootstrapped(): Promise<boolean> {
    return (await this.kv.get(BOOTSTRAPPED_KEY)).value !== null;
  }

  /**
   * Issues a one-time bootstrap token (valid `ttlMs`) when the cluster has no admin yet;
   * a broker prints it on its own stderr, so only its operator sees it.
   *
   * @param ttlMs how long the token works
   * @returns the token, or null when the cluster is bootstrapped already
   */
  async issueBootstrapToken(ttlMs = 3_600_000): Promise<string | null> {
    if (await this.bootstrapped()) return null;
    const token = "rb_" + randomSecret();
    const stored: StoredBootstrapToken = {
      ...await hashSecret(token),
      expiresMs: this.now() + ttlMs,
    };
    await kvRetry(() => this.kv.set(BOOTSTRAP_TOKEN_KEY, stored));
    return token;
  }

  /**
   * Trades the one-time bootstrap token for the first admin key.
   *
   * @param token the token the broker printed
   * @returns the admin key
   * @throws {RillError} UNAUTHENTICATED when the token is wrong, used or expired
   */
  async bootstrapWithToken(token: string): Promise<CreatedApiKey> {
    const entry = await this.kv.get<StoredBootstrapToken>(BOOTSTRAP_TOKEN_KEY);
    const stored = entry.value;
    const ok = stored !== null && stored.expiresMs > this.now() && token.length <= 256 &&
      await verifySecret(stored, token);
    if (!ok) {
      throw new RillError("UNAUTHENTICATED", "The bootstrap token is wrong, used or expired");
    }
    return await this.bootstrap();
  }
}
