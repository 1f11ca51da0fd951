/**
 * `rill auth`: API keys.
 *
 * ```
 * rill auth bootstrap --token T [--broker URL]      trade the broker's one-time token for the first admin key
 * rill auth bootstrap --data DIR [--kv PATH|URL]    make the first admin key in the cluster's KV directly
 * rill auth keys create --principal P [--superuser] [--expires-in-ms N] [--description D]
 * rill auth keys list
 * rill auth keys revoke KEY_ID
 * rill auth whoami
 * ```
 *
 * A new key's token (`<keyId>.<secret>`) is printed once on stdout and never again; the
 * broker keeps only a slow hash of it. Use it with `--api-key` or `$RILL_API_KEY`.
 * Bootstrap works once per cluster: the direct form needs the data directory (or KV) on
 * this host, the remote form the token a broker started with `--auth` printed on its own
 * stderr, so neither can be used by someone who only reaches the HTTP port.
 *
 * @module
 */
import type { ApiKeyInfo } from "../coordination/auth_keys.ts";
import { Transport } from "../client/transport.ts";
import {
  type CliIo,
  connection,
  expectPositionals,
  intOption,
  parseCommand,
  UsageError,
} from "./common.ts";

/** The help text of `rill auth`. */
export const AUTH_HELP = `Usage: rill auth <command> [options]

Commands:
  bootstrap --token T            trade the one-time token a broker started with --auth
                                 printed for the first admin key (over --broker)
  bootstrap --data DIR [--kv K]  make the first admin key in the cluster's KV directly
  keys create --principal P [--superuser] [--expires-in-ms N] [--description D]
  keys list
  keys revoke KEY_ID
  whoami                         the principal of --api-key

The token of a new key is printed once on stdout; pass it as --api-key or $RILL_API_KEY.

Options: --format text|json (keys list), --broker URL (default $RILL_BROKER),
         --api-key KEY (default $RILL_API_KEY),
         --ca-file PEM (for https brokers with a private CA)
`;

function keyLine(k: ApiKeyInfo, now: number): string {
  const status = k.revokedMs !== null
    ? "revoked"
    : k.expiresMs !== null && k.expiresMs <= now
    ? "expired"
    : "active";
  const expires = k.expiresMs === null ? "never" : new Date(k.expiresMs).toISOString();
  return [k.keyId, k.principal, k.superuser ? "superuser" : "-", status, expires, k.description]
    .join("\t");
}

/**
 * Runs `rill auth`.
 *
 * @param args the arguments after `auth`
 * @param io where to write
 * @returns the exit status
 * @throws {UsageError} on a bad command line; a RillError when the broker refuses
 * @example
 * ```ts
 * await run(["keys", "list", "--api-key", token], processIo());
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    token: { type: "string" },
    data: { type: "string" },
    kv: { type: "string" },
    principal: { type: "string" },
    superuser: { type: "boolean" },
    "expires-in-ms": { type: "string" },
    description: { type: "string" },
    format: { type: "string" },
  });
  if (values.help || positionals.length === 0) {
    await io.out(AUTH_HELP);
    return values.help ? 0 : 2;
  }
  const [sub, ...rest] = positionals;
  if (sub === "bootstrap") {
    expectPositionals(rest, []);
    return await bootstrap(values, io);
  }
  const t = new Transport({ ...connection(values), retry: { retries: 2 } });
  if (sub === "whoami") {
    expectPositionals(rest, []);
    const me = await t.json<{ principal: string; superuser: boolean; keyId: string | null }>(
      "GET",
      "/v1/auth/whoami",
    );
    await io.out(`${me.principal}${me.superuser ? " (superuser)" : ""}\n`);
    return 0;
  }
  if (sub !== "keys") throw new UsageError(`Unknown auth command "${sub}"; run "rill auth --help"`);
  const [action, ...more] = rest;
  switch (action) {
    case "create": {
      expectPositionals(more, []);
      if (values.principal === undefined) throw new UsageError("--principal is required");
      const ttl = intOption("--expires-in-ms", values["expires-in-ms"], 1);
      const created = await t.json<{ key: ApiKeyInfo; token: string }>("POST", "/v1/auth/keys", {
        json: {
          principal: values.principal,
          superuser: values.superuser ?? false,
          expiresMs: ttl === undefined ? null : Date.now() + ttl,
          description: values.description ?? "",
        },
      });
      await io.err(
        `Created key ${created.key.keyId} for "${created.key.principal}". ` +
          `This is the only time its token is shown:\n`,
      );
      await io.out(`${created.token}\n`);
      return 0;
    }
    case "list": {
      expectPositionals(more, []);
      const { keys } = await t.json<{ keys: ApiKeyInfo[] }>("GET", "/v1/auth/keys");
      const now = Date.now();
      if (values.format === "json") {
        await io.out(JSON.stringify({ keys }) + "\n");
      } else if (values.format !== undefined && values.format !== "text") {
        throw new UsageError(`--format must be text or json, got "${values.format}"`);
      } else {
        await io.out(
          "KEY-ID\tPRINCIPAL\tSUPERUSER\tSTATUS\tEXPIRES\tDESCRIPTION\n" +
            keys.map((k) => `${keyLine(k, now)}\n`).join(""),
        );
      }
      return 0;
    }
    case "revoke": {
      const [keyId] = expectPositionals(more, ["KEY_ID"]);
      await t.json("DELETE", `/v1/auth/keys/${encodeURIComponent(keyId)}`);
      await io.err(`Revoked ${keyId}; every broker refuses it within seconds\n`);
      return 0;
    }
    default:
      throw new UsageError(`Unknown keys command "${action ?? ""}"; use create, list or revoke`);
  }
}

async function bootstrap(
  values: { token?: string; data?: string; kv?: string; broker?: string; "api-key"?: string },
  io: CliIo,
): Promise<number> {
  let token: string;
  if (values.token !== undefined) {
    if (values.data !== undefined || values.kv !== undefined) {
      throw new UsageError("Give either --token (over HTTP) or --data/--kv (direct), not both");
    }
    const t = new Transport({ ...connection(values), retry: { retries: 0 } });
    const created = await t.json<{ token: string }>("POST", "/v1/auth/bootstrap", {
      json: { token: values.token },
    });
    token = created.token;
  } else if (values.data !== undefined || values.kv !== undefined) {
    // Direct: this host holds the cluster's KV; server code is loaded only here.
    const { ApiKeyStore } = await import("../coordination/auth_keys.ts");
    const path = values.kv ?? `${values.data!.replace(/\/+$/, "")}/meta.kv`;
    const kv = await Deno.openKv(path);
    try {
      token = (await new ApiKeyStore(kv).bootstrap()).token;
    } finally {
      kv.close();
    }
  } else {
    throw new UsageError("rill auth bootstrap needs --token T, or --data DIR / --kv PATH");
  }
  await io.err(
    `Created the admin key (principal "admin", superuser). This is the only time it is shown:\n`,
  );
  await io.out(`${token}\n`);
  return 0;
}
