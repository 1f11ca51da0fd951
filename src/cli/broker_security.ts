/**
 * The security flags of `rill broker` / `rill follower`, and what they turn into:
 *
 * ```
 * --auth                           require API keys (see `rill auth`); /healthz stays open
 * --tls-cert FILE --tls-key FILE   serve HTTPS (PEM files)
 * --cluster-secret S               the secret replicas present (also $RILL_CLUSTER_SECRET;
 *                                  with --auth and neither, one is made once and kept in KV)
 * --quota-requests N               requests/s per principal (0 = unlimited)
 * --quota-produce-bytes N          produced bytes/s per principal (0 = unlimited)
 * --quota-fetch-bytes N            fetched bytes/s per principal (0 = unlimited)
 * --max-streams N                  concurrent long polls + SSE streams on the broker
 * --max-streams-per-principal N    the same per principal (with --auth)
 * ```
 *
 * Without `--auth`, listening on anything but a loopback address prints a loud warning.
 * With `--auth` and no admin key yet, the broker prints a one-time bootstrap token on its
 * stderr (only its operator sees it), valid for an hour: `rill auth bootstrap --token T`.
 *
 * @module
 */
import { ApiKeyStore, clusterSecretKey, randomSecret } from "../coordination/auth_keys.ts";
import { kvRetry } from "../coordination/kv_retry.ts";
import type { AppSecurityOptions } from "../http/security.ts";
import type { QuotaConfig } from "../http/quotas.ts";
import { intOption, UsageError } from "./common.ts";

/** The parseArgs options of the security flags. */
export const SECURITY_OPTIONS = {
  auth: { type: "boolean" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "cluster-secret": { type: "string" },
  "quota-requests": { type: "string" },
  "quota-produce-bytes": { type: "string" },
  "quota-fetch-bytes": { type: "string" },
  "max-streams": { type: "string" },
  "max-streams-per-principal": { type: "string" },
} as const;

/** The help lines of the security flags. */
export const SECURITY_HELP =
  `  --auth                 require API keys on every route but /healthz (see "rill auth")
  --tls-cert FILE        serve HTTPS with this PEM certificate (with --tls-key)
  --tls-key FILE         the PEM private key of --tls-cert
  --cluster-secret S     secret brokers present to fetch as replicas
                         (default $RILL_CLUSTER_SECRET; with --auth, one kept in KV)
  --quota-requests N     requests/s per principal (default 0: unlimited)
  --quota-produce-bytes N  produced bytes/s per principal (default 0: unlimited)
  --quota-fetch-bytes N  fetched bytes/s per principal (default 0: unlimited)
  --max-streams N        concurrent long polls and SSE streams (default 1000)
  --max-streams-per-principal N  the same per principal, with --auth (default 100)
`;

/** Parsed security flags. */
export interface SecurityArgs {
  /** --auth */
  auth: boolean;
  /** --tls-cert */
  tlsCert?: string;
  /** --tls-key */
  tlsKey?: string;
  /** --cluster-secret */
  clusterSecret?: string;
  /** quota overrides */
  quotas: Partial<QuotaConfig>;
}

/**
 * Reads the security flags out of parsed `rill broker` values.
 *
 * @param values parseArgs values including {@linkcode SECURITY_OPTIONS}
 * @returns the flags
 * @throws {UsageError} on a malformed number, or a TLS file without its pair
 * @example
 * ```ts
 * parseSecurityArgs({ auth: true }).auth; // true
 * ```
 */
export function parseSecurityArgs(values: Record<string, unknown>): SecurityArgs {
  const str = (k: string) => values[k] as string | undefined;
  const quotas: Partial<QuotaConfig> = {};
  const num = (flag: string, field: keyof QuotaConfig, min: number) => {
    const v = intOption(`--${flag}`, str(flag), min);
    if (v !== undefined) quotas[field] = v;
  };
  num("quota-requests", "requestsPerSec", 0);
  num("quota-produce-bytes", "produceBytesPerSec", 0);
  num("quota-fetch-bytes", "fetchBytesPerSec", 0);
  num("max-streams", "maxStreams", 1);
  num("max-streams-per-principal", "maxStreamsPerPrincipal", 1);
  const tlsCert = str("tls-cert");
  const tlsKey = str("tls-key");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  const clusterSecret = str("cluster-secret");
  if (clusterSecret !== undefined && clusterSecret.length < 16) {
    throw new UsageError("--cluster-secret must be at least 16 characters");
  }
  return { auth: values.auth === true, tlsCert, tlsKey, clusterSecret, quotas };
}

/**
 * Reads the TLS certificate and key files.
 *
 * @param args the flags
 * @returns `{ cert, key }` for Deno.serve, or undefined without TLS
 * @throws {Error} naming the file that cannot be read
 * @example
 * ```ts
 * const tls = await readTls({ auth: false, tlsCert: "cert.pem", tlsKey: "key.pem", quotas: {} });
 * ```
 */
export async function readTls(
  args: SecurityArgs,
): Promise<{ cert: string; key: string } | undefined> {
  if (args.tlsCert === undefined || args.tlsKey === undefined) return undefined;
  const read = async (flag: string, path: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (e) {
      throw new Error(`Cannot read ${flag} "${path}": ${e instanceof Error ? e.message : e}`);
    }
  };
  return {
    cert: await read("--tls-cert", args.tlsCert),
    key: await read("--tls-key", args.tlsKey),
  };
}

/**
 * Whether a listen address is a loopback one.
 *
 * @param hostname the listen host
 * @returns true for 127.x, ::1 and localhost
 * @example
 * ```ts
 * isLoopback("0.0.0.0"); // false
 * ```
 */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\./.test(hostname);
}

function envSecret(): string | undefined {
  try {
    return Deno.env.get("RILL_CLUSTER_SECRET") || undefined;
  } catch {
    return undefined; // no --allow-env
  }
}

/**
 * The cluster secret kept in KV, made once (atomically) by the first broker that needs it.
 *
 * @param kv the cluster's KV
 * @returns the secret
 * @example
 * ```ts
 * const secret = await ensureStoredClusterSecret(kv);
 * ```
 */
export async function ensureStoredClusterSecret(kv: Deno.Kv): Promise<string> {
  for (let i = 0; i < 10; i++) {
    const e = await kv.get<string>(clusterSecretKey());
    if (e.value !== null) return e.value;
    const secret = randomSecret();
    const res = await kvRetry(() =>
      kv.atomic().check({ key: clusterSecretKey(), versionstamp: null }).set(
        clusterSecretKey(),
        secret,
      ).commit()
    );
    if (res.ok) return secret;
  }
  throw new Error("Could not store a cluster secret in KV");
}

/**
 * Turns the flags into the app's security settings: resolves the cluster secret, warns
 * about an open public listener, and prints a bootstrap token when auth is on and there is
 * no admin yet.
 *
 * @param kv the cluster's KV
 * @param args the flags
 * @param hostname the listen host
 * @param log where warnings go
 * @returns the settings for createApp
 * @example
 * ```ts
 * createApp(broker, await prepareSecurity(broker.kv, opts.security, "127.0.0.1", console.error));
 * ```
 */
export async function prepareSecurity(
  kv: Deno.Kv,
  args: SecurityArgs,
  hostname: string,
  log: (line: string) => void,
): Promise<AppSecurityOptions> {
  let clusterSecret: string | null = args.clusterSecret ?? envSecret() ?? null;
  if (clusterSecret === null && args.auth) clusterSecret = await ensureStoredClusterSecret(kv);
  if (!args.auth && !isLoopback(hostname)) {
    log(
      `\n!!! WARNING: listening on ${hostname} WITHOUT AUTHENTICATION: anyone who can reach ` +
        `this address can read, write and delete every topic. Use --auth (and --tls-cert/` +
        `--tls-key) on a non-loopback address. !!!\n`,
    );
  }
  if (args.auth) {
    const token = await new ApiKeyStore(kv).issueBootstrapToken();
    if (token !== null) {
      log(
        `auth is on and the cluster has no admin key yet. One-time bootstrap token ` +
          `(valid 1 h): ${token}\n  run: rill auth bootstrap --token <token> --broker <url>`,
      );
    }
  }
  return { auth: args.auth, clusterSecret, quotas: args.quotas };
}
