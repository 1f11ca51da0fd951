/**
 * The broker's WebSocket endpoint, `GET /v1/ws` on the HTTP port: a streaming connection
 * that carries produce requests with pipelined acknowledgements and fetches of many
 * partitions (README.md, "WebSocket protocol"; frames in src/protocol/ws_frames.ts). It is a
 * skin over src/broker, as the HTTP routes are; it shares only the security state (keys,
 * ACLs, quotas) with the HTTP app.
 *
 * The handshake may carry an API key (`Authorization` header, or the subprotocol
 * `rill.auth.<base64url key>` that browsers can set); a key that does not authenticate is
 * refused with HTTP 401 before the upgrade, so a client can tell it from a proxy that
 * refuses WebSocket. Without one, the first frame may be a `hello` carrying it.
 *
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import { RillError } from "../protocol/errors.ts";
import { WS_AUTH_SUBPROTOCOL_PREFIX, WS_PATH, WS_SUBPROTOCOL } from "../protocol/ws_frames.ts";
import { ANONYMOUS, type Principal } from "../http/auth.ts";
import type { InstalledSecurity } from "../http/security.ts";
import { WsSession } from "./session.ts";
import { WsMeter } from "./observe.ts";
import { cancelIdleTimer, IdlePings } from "./deno_socket.ts";

/** Per-connection and per-broker limits of the endpoint. */
export interface WsLimits {
  /** produce payload bytes a connection may have unanswered; default 8 MiB */
  maxInFlightBytes: number;
  /** fetched bytes queued on a connection's socket before fetches pause; default 4 MiB */
  maxUnsentBytes: number;
  /** open WebSocket connections on the broker; default 20,000 */
  maxConnections: number;
  /**
   * a connection that sends nothing for half of this is pinged, and closed when no pong
   * comes within the other half (Deno's `idleTimeout`, swept by deno_socket.ts IdlePings:
   * pinged after 17/32 to 18/32 of it); 0 never; default 30,000
   */
  idleTimeoutMs: number;
}

/** The defaults of {@linkcode WsLimits}. */
export const DEFAULT_WS_LIMITS: Readonly<WsLimits> = Object.freeze({
  maxInFlightBytes: 8 * 1024 * 1024,
  maxUnsentBytes: 4 * 1024 * 1024,
  maxConnections: 20_000,
  idleTimeoutMs: 30_000,
});

/** The endpoint's handler: a response for a WebSocket request to `/v1/ws`, else null. */
export type WsEndpoint = ((req: Request) => Promise<Response> | null) & {
  /** open connections */
  readonly connections: number;
  /**
   * Closes every open connection (close code 1001, going away, with this reason). For the
   * broker's stop, after `broker.beginShutdown()` (which refuses new connections) and before
   * the HTTP server's shutdown: that closes the connections it finds open itself and waits
   * for each, which never ends for a peer that stopped reading (the close frame waits behind
   * answers it does not take).
   */
  close(reason: string): void;
};

/**
 * Makes the WebSocket endpoint of a broker.
 *
 * @param broker the broker
 * @param installed the security state shared with the HTTP app (security.ts `buildSecurity`)
 * @param limits overrides of {@linkcode DEFAULT_WS_LIMITS}
 * @returns the handler; put it before the app: `ws(req) ?? app.fetch(req, info)`
 * @example
 * ```ts
 * const installed = buildSecurity(broker.kv, {});
 * const app = createApp(broker, {}, installed);
 * const ws = wsEndpoint(broker, installed);
 * Deno.serve((req, info) => ws(req) ?? app.fetch(req, info));
 * ```
 */
export function wsEndpoint(
  broker: Broker,
  installed: InstalledSecurity,
  limits: Partial<WsLimits> = {},
): WsEndpoint {
  const { security, quotas } = installed;
  const lim: WsLimits = { ...DEFAULT_WS_LIMITS, ...limits };
  /** the open connections */
  const sockets = new Set<WebSocket>();
  const meter = new WsMeter(broker.metrics, () => sockets.size);
  /** the idle timers of the open connections, swept instead of re-armed on every message */
  const pings = new IdlePings(lim.idleTimeoutMs);

  const handler = (req: Request): Promise<Response> | null => {
    if (req.method !== "GET") return null;
    const url = req.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const end = url.indexOf("?", pathStart);
    if (url.slice(pathStart, end < 0 ? undefined : end) !== WS_PATH) return null;
    if ((req.headers.get("upgrade") ?? "").toLowerCase() !== "websocket") return null;
    return accept(req);
  };
  // A handshake refused before the upgrade is counted as route "upgrade".
  const refusal = (status: number, error: RillError): Response => {
    meter.answered("upgrade", 0, error);
    return refusalResponse(status, error);
  };

  async function accept(req: Request): Promise<Response> {
    const limit = quotas.limitRefusal(req);
    if (limit !== null) return refusal(limit.status, limit.error);
    if (broker.draining) {
      return refusal(
        503,
        new RillError("BROKER_NOT_AVAILABLE", `Broker ${broker.id} is shutting down`),
      );
    }
    if (sockets.size >= lim.maxConnections) {
      return refusal(
        429,
        new RillError(
          "THROTTLING_QUOTA_EXCEEDED",
          "The broker has too many WebSocket connections",
          {
            retryAfterMs: 1000,
          },
        ),
      );
    }
    const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) =>
      p.trim()
    ).filter((p) => p !== "");
    let credentials = req.headers.get("authorization") ?? undefined;
    const carried = offered.find((p) => p.startsWith(WS_AUTH_SUBPROTOCOL_PREFIX));
    if (carried !== undefined) {
      try {
        credentials = `Bearer ${base64UrlDecode(carried.slice(WS_AUTH_SUBPROTOCOL_PREFIX.length))}`;
      } catch {
        credentials = "Bearer -";
      }
    }
    let principal: Principal | null = security.auth
      ? null
      : { name: ANONYMOUS, superuser: true, keyId: null };
    if (security.auth && credentials !== undefined) {
      const who = await security.authenticate(credentials);
      if ("error" in who) {
        security.auditDenied({
          audit: "authentication_failed",
          reason: who.error,
          keyId: who.keyId ?? null,
          method: "GET",
          path: WS_PATH,
        });
        return who.throttled
          ? refusal(
            429,
            new RillError("THROTTLING_QUOTA_EXCEEDED", "Too many credential checks; retry later"),
          )
          : refusal(401, new RillError("UNAUTHENTICATED", "Missing or bad credentials"));
      }
      principal = who;
    }
    const { socket, response } = Deno.upgradeWebSocket(req, {
      protocol: offered.includes(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : undefined,
      idleTimeout: lim.idleTimeoutMs / 1000,
    });
    const session = new WsSession(broker, installed, lim, socket, principal, meter);
    sockets.add(socket);
    pings.watch(socket);
    socket.addEventListener("close", () => {
      sockets.delete(socket);
      pings.unwatch(socket);
      cancelIdleTimer(socket);
      session.closed();
    });
    return response;
  }

  Object.defineProperty(handler, "connections", { get: () => sockets.size });
  (handler as WsEndpoint).close = (reason: string): void => {
    for (const socket of sockets) socket.close(1001, reason);
  };
  return handler as WsEndpoint;
}

function refusalResponse(status: number, error: RillError): Response {
  return new Response(JSON.stringify(error.toJSON()), {
    status,
    headers: { "content-type": "application/json", "access-control-allow-origin": "*" },
  });
}

function base64UrlDecode(text: string): string {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}
