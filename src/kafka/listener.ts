/**
 * The Kafka wire-protocol listener of a broker: a TCP (or TLS) server whose connections
 * (connection.ts) hand each request to {@linkcode dispatchRequest}, which checks the API
 * version, authentication, decodes the body with the schema tables (messages.ts), calls the
 * API's handler and encodes the answer. Handlers are thin skins over the broker.
 *
 * ```ts
 * const kafka = KafkaListener.listen(broker, { hostname: "127.0.0.1", port: 0 });
 * await broker.register(httpUrl, kafka.advertised);
 * ```
 *
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import {
  type Answer,
  type ConnectionOptions,
  type Dispatch,
  MAX_FRAME_BYTES,
  type RequestFrame,
  serveConnection,
} from "./connection.ts";
import type { KafkaContext, KafkaSecurity, Session } from "./context.ts";
import { API, SCHEMAS } from "./messages.ts";
import { decode, encode } from "./schema.ts";
import { apiVersionsBody, isSupported } from "./versions.ts";
import { KafkaDecodeError, Writer } from "./wire.ts";
import { HANDLERS } from "./handlers.ts";
import { KAFKA_ERROR } from "./errors.ts";
import { ClassicGroups } from "./group_coordinator.ts";
import { RELEASE } from "./fetch.ts";
import { KafkaMeter } from "./observe.ts";
import { FramePool } from "./frame_pool.ts";

/** Settings of {@linkcode KafkaListener.listen}. */
export interface KafkaListenerOptions {
  /** the address to bind */
  hostname: string;
  /** the port (0 picks one) */
  port: number;
  /** PEM certificate and key: the listener speaks TLS (SASL_SSL) */
  tls?: { cert: string; key: string };
  /** host:port Metadata gives clients (default: the bound address) */
  advertised?: string;
  /** the security state; null or absent: open */
  security?: KafkaSecurity | null;
  /** the largest request (default 100 MiB) */
  maxFrameBytes?: number;
  /** a request must arrive within this once started (default 30 s) */
  frameTimeoutMs?: number;
  /** connections served at once; more are closed as they arrive (default 4096) */
  maxConnections?: number;
  /** where one-line reports go (default: stderr) */
  log?: (line: string) => void;
}

/** A running Kafka listener. */
export class KafkaListener {
  /** the bound address */
  readonly addr: Deno.NetAddr;
  /** host:port as advertised in Metadata */
  readonly advertised: string;
  /** the shared handler context */
  readonly ctx: KafkaContext;
  /** the buffers Produce frames are read into, reused across connections */
  readonly frames: FramePool = new FramePool();
  readonly #listener: Deno.Listener;
  readonly #abort = new AbortController();
  readonly #connections = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  readonly #maxConnections: number;
  #refusedLogged = 0;

  private constructor(
    broker: Broker,
    listener: Deno.Listener,
    opts: KafkaListenerOptions,
  ) {
    this.#listener = listener;
    this.#maxConnections = opts.maxConnections ?? 4096;
    this.addr = listener.addr as Deno.NetAddr;
    const log = opts.log ?? ((line: string) => console.error(`rill broker ${broker.id}: ${line}`));
    this.advertised = opts.advertised ?? advertisedFor(this.addr);
    const [host, port] = splitHostPort(this.advertised);
    this.ctx = {
      broker,
      advertisedHost: host,
      advertisedPort: port,
      security: opts.security ?? null,
      groups: new ClassicGroups(broker, log),
      log,
      meter: new KafkaMeter(broker.metrics, () => this.#connections.size),
    };
    const limits: ConnectionOptions = {
      maxFrameBytes: opts.maxFrameBytes ?? MAX_FRAME_BYTES,
      frameTimeoutMs: opts.frameTimeoutMs ?? broker.config.requestBodyTimeoutMs,
      log,
      pool: this.frames,
    };
    this.#accepting = this.#acceptLoop(limits);
  }

  async #acceptLoop(limits: ConnectionOptions): Promise<void> {
    const log = this.ctx.log;
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed
      }
      if (this.#connections.size >= this.#maxConnections) {
        // Over the limit: closed at once (one log line a second at most).
        const now = Date.now();
        if (now - this.#refusedLogged >= 1000) {
          this.#refusedLogged = now;
          log(`kafka: refusing connections beyond ${this.#maxConnections} at once`);
        }
        try {
          conn.close();
        } catch { /* gone */ }
        continue;
      }
      const session: Session = {
        principal: null,
        mechanism: null,
        peer: peerOf(conn),
        clientId: "",
      };
      if (this.ctx.security === null || !this.ctx.security.auth) {
        session.principal = { name: "ANONYMOUS", superuser: true, keyId: null };
      }
      const meter = this.ctx.meter!;
      const dispatch: Dispatch = (req) => {
        const answer = dispatchRequest(this.ctx, session, req);
        answer.catch((e) => meter.closed(req.apiKey, e));
        return answer;
      };
      const run = serveConnection(conn, dispatch, limits, this.#abort.signal).catch((e) =>
        log(`kafka: connection from ${session.peer} failed: ${e}`)
      );
      this.#connections.add(run);
      run.finally(() => this.#connections.delete(run));
    }
  }

  /**
   * Binds and starts accepting connections.
   *
   * @param broker the broker to serve
   * @param opts address, TLS, advertised address, security
   * @returns the listener
   * @throws {Error} when the address cannot be bound
   */
  static listen(broker: Broker, opts: KafkaListenerOptions): KafkaListener {
    let listener: Deno.Listener;
    try {
      listener = opts.tls
        ? Deno.listenTls({ hostname: opts.hostname, port: opts.port, ...opts.tls })
        : Deno.listen({ hostname: opts.hostname, port: opts.port });
    } catch (e) {
      if (e instanceof Deno.errors.AddrInUse) {
        throw new Error(
          `Cannot listen for Kafka clients on ${opts.hostname}:${opts.port}: the address is in use (give another --kafka-listen, or --no-kafka)`,
        );
      }
      throw e;
    }
    return new KafkaListener(broker, listener, opts);
  }

  /** Stops accepting, closes every connection, and waits for them to end. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    this.#abort.abort();
    // Waiting JoinGroup/SyncGroup requests are answered now (COORDINATOR_NOT_AVAILABLE), so
    // no connection waits out a rebalance timeout while the broker stops.
    this.ctx.groups.close();
    await this.#accepting;
    await Promise.allSettled([...this.#connections]);
  }
}

/**
 * Answers one request: version and authentication checks, decode, handler, encode.
 *
 * @param ctx the context
 * @param session the connection's state
 * @param req the framed request
 * @returns the answer's chunks, or null when none is owed
 * @throws {KafkaDecodeError} when the connection must close (unknown API or version, a body
 *   that does not decode, a request before authentication)
 */
export async function dispatchRequest(
  ctx: KafkaContext,
  session: Session,
  req: RequestFrame,
): Promise<Answer | null> {
  const start = performance.now();
  const { apiKey, apiVersion } = req;
  session.clientId = req.clientId ?? "";
  const schema = SCHEMAS[apiKey];
  if (!isSupported(apiKey, apiVersion)) {
    if (apiKey === API.ApiVersions) {
      // The v0 answer any client can read: error 35 and our ranges (librdkafka retries v0).
      const w = new Writer().int32(req.correlationId);
      const fallback = { ...apiVersionsBody(), errorCode: KAFKA_ERROR.UNSUPPORTED_VERSION };
      encode(SCHEMAS[API.ApiVersions].res, 0, w, fallback);
      ctx.meter?.answered(apiKey, null, fallback, start);
      return w.frame();
    }
    throw new KafkaDecodeError(
      schema
        ? `${apiName(apiKey)} version ${apiVersion} is not supported`
        : `API key ${apiKey} is not supported`,
    );
  }
  const flexible = apiVersion >= schema.req.flexible;
  if (flexible) req.reader.skipTags(); // request header v2
  let body;
  try {
    body = decode(schema.req, apiVersion, req.reader);
  } catch (e) {
    if (e instanceof KafkaDecodeError) {
      throw new KafkaDecodeError(`${apiName(apiKey)} v${apiVersion}: ${e.message}`);
    }
    throw e;
  }
  if (
    session.principal === null && apiKey !== API.ApiVersions && apiKey !== API.SaslHandshake &&
    apiKey !== API.SaslAuthenticate
  ) {
    throw new KafkaDecodeError(
      `${
        apiName(apiKey)
      } before SASL authentication (only ApiVersions and SaslHandshake are allowed)`,
    );
  }
  const handler = HANDLERS[apiKey];
  const answer = await handler(ctx, session, apiVersion, body);
  // A Produce with acks 1 or all was written (or refused) before its answer: nothing refers
  // to its batches any more, so its frame buffer may be reused. acks=0 appends may still be
  // queued when this returns.
  if (apiKey === API.Produce && (body as { acks: number }).acks !== 0) req.reusable = true;
  ctx.meter?.answered(apiKey, body, answer, start);
  if (answer === null) return null;
  const release = (answer as { [RELEASE]?: () => void })[RELEASE];
  const w = new Writer().int32(req.correlationId);
  // Response header v1 (tagged fields) for flexible versions, except ApiVersions (always v0).
  if (flexible && apiKey !== API.ApiVersions) w.noTags();
  try {
    encode(schema.res, apiVersion, w, answer);
  } catch (e) {
    release?.();
    throw e;
  }
  const out: Answer = w.frame();
  if (release) out.written = release;
  if (session.closeAfterAnswer) out.closeAfter = "SASL authentication failed";
  return out;
}

/**
 * The name of an API key, for messages.
 *
 * @param apiKey the key
 * @returns its name
 */
export function apiName(apiKey: number): string {
  for (const [name, key] of Object.entries(API)) if (key === apiKey) return name;
  return `API ${apiKey}`;
}

function advertisedFor(addr: Deno.NetAddr): string {
  const host = addr.hostname === "0.0.0.0" || addr.hostname === "::"
    ? Deno.hostname()
    : addr.hostname;
  return `${host.includes(":") ? `[${host}]` : host}:${addr.port}`;
}

/**
 * Splits "host:port" (IPv6 in brackets).
 *
 * @param hostPort the address
 * @returns host and port
 */
export function splitHostPort(hostPort: string): [string, number] {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(hostPort);
  if (!m) throw new Error(`"${hostPort}" is not HOST:PORT`);
  return [m[1] ?? m[2], Number(m[3])];
}

function peerOf(conn: Deno.Conn): string {
  const a = conn.remoteAddr as Deno.NetAddr;
  return a && "hostname" in a ? `${a.hostname}:${a.port}` : "unknown";
}
