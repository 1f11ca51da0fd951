/**
 * A broker served on a real loopback socket (port 0) with its HTTP app and, unless left out,
 * its WebSocket endpoint, as `rill broker` serves them: for tests of the WebSocket protocol
 * and of the client's transports.
 *
 * @module
 */
import { Broker } from "../../src/broker/broker.ts";
import { ApiKeyStore } from "../../src/coordination/auth_keys.ts";
import { createApp } from "../../src/http/app.ts";
import { type AppSecurityOptions, buildSecurity } from "../../src/http/security.ts";
import { type WsEndpoint, wsEndpoint, type WsLimits } from "../../src/ws/endpoint.ts";

/** A served broker. */
export interface ServedBroker extends AsyncDisposable {
  broker: Broker;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** the WebSocket endpoint (null when left out) */
  ws: WsEndpoint | null;
  /** the admin token, with auth on */
  admin: string | undefined;
  /** audit lines written so far */
  audit: string[];
  /** creates a topic */
  topic(name: string, partitions?: number): Promise<void>;
}

/**
 * Serves a broker on a temp dir and an in-memory KV.
 *
 * @param opts security settings, WebSocket limits, or `ws: false` for a broker without the
 *   endpoint (as behind a proxy that refuses WebSocket)
 * @returns the served broker; dispose of it to stop it
 */
export async function serveBroker(
  opts: { security?: AppSecurityOptions; limits?: Partial<WsLimits>; ws?: boolean } = {},
): Promise<ServedBroker> {
  const dataDir = await Deno.makeTempDir({ prefix: "rill-ws-" });
  const kv = await Deno.openKv(":memory:");
  const broker = await Broker.open({
    id: 1,
    dataDir,
    kv,
    advertisedUrl: "http://127.0.0.1:1",
    log: () => {},
  });
  const audit: string[] = [];
  const security: AppSecurityOptions = {
    audit: (l) => audit.push(l),
    auditPerSecond: 1e9,
    ...opts.security,
  };
  const installed = buildSecurity(kv, security);
  const app = createApp(broker, security, installed);
  const ws = opts.ws === false ? null : wsEndpoint(broker, installed, opts.limits);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req, info) => ws?.(req) ?? app.fetch(req, info),
  );
  let admin: string | undefined;
  if (security.auth) {
    admin = (await new ApiKeyStore(kv).bootstrap()).token;
  }
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    broker,
    url,
    ws,
    admin,
    audit,
    async topic(name, partitions = 1) {
      const res = await fetch(`${url}/v1/topics`, {
        method: "POST",
        body: JSON.stringify({ name, partitions }),
        headers: {
          "content-type": "application/json",
          ...(admin ? { authorization: `Bearer ${admin}` } : {}),
        },
      });
      if (res.status !== 201) throw new Error(await res.text());
      await res.body?.cancel();
    },
    async [Symbol.asyncDispose]() {
      broker.beginShutdown();
      await server.shutdown();
      await broker.close();
      kv.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/**
 * Closes a WebSocket and waits for its `close` event.
 *
 * @param socket the socket
 */
export async function closeSocket(socket: WebSocket): Promise<void> {
  const closed = new Promise((r) => socket.onclose = r);
  socket.close();
  await closed;
}
