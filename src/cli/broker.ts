/**
 * `rill broker` and `rill follower`: run a broker process serving the HTTP API.
 *
 * ```
 * rill broker [--id N] [--data DIR] [--kv PATH|URL] [--listen HOST:PORT] [--advertised-url URL]
 *             [--request-body-timeout-ms N] [--min-free-bytes N] [--kv-reserve-bytes N]
 *             [--ws-idle-timeout-ms N]
 *             [--kafka-listen HOST:PORT] [--kafka-advertised HOST:PORT] [--no-kafka]
 *             [--auth] [--tls-cert FILE --tls-key FILE] [--cluster-secret S] [quota flags]
 * ```
 *
 * Security flags are parsed and applied by broker_security.ts.
 *
 * When it is ready it prints exactly one line to stdout,
 * `rill broker <id> listening on http://<host>:<port>` (tests read the port from it when
 * listening on port 0), preceded by `rill broker <id> kafka listening on <host>:<port>` when
 * the Kafka listener runs; everything else goes to stderr. SIGINT or SIGTERM stops it
 * gracefully: no new requests, WebSocket connections closed (1001), in-flight appends finish
 * (requests get up to 5 s: an answer a client does not read is not waited for), logs close
 * with their clean-shutdown marker, and the process exits 0. A second signal exits at once
 * (status 130).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Broker } from "../broker/broker.ts";
import type { BrokerRole } from "../coordination/cluster.ts";
import { createApp, securityOf } from "../http/app.ts";
import { buildSecurity } from "../http/security.ts";
import { KafkaListener } from "../kafka/listener.ts";
import { wsEndpoint } from "../ws/endpoint.ts";
import { installNativeCrc32c } from "../protocol/native_crc32c.ts";
import { tuneMalloc } from "../broker/malloc_tuning.ts";
import {
  parseSecurityArgs,
  prepareSecurity,
  readTls,
  SECURITY_HELP,
  SECURITY_OPTIONS,
  type SecurityArgs,
} from "./broker_security.ts";
import { UsageError } from "./common.ts";
import {
  OBSERVE_HELP,
  OBSERVE_OPTIONS,
  type ObserveArgs,
  parseObserveArgs,
} from "./broker_observe.ts";
import { Logger } from "../observability/log.ts";
import { Metrics } from "../observability/metrics.ts";
import { connectionCounter } from "../observability/connections.ts";
import { metricsHandler } from "../http/observe.ts";
import {
  parseReplicationArgs,
  REPLICATION_HELP,
  REPLICATION_OPTIONS,
  type ReplicationArgs,
} from "./broker_replication.ts";

/** The help text of `rill broker`. */
/**
 * The listen queue of the broker's HTTP/WebSocket port. Deno's default, 511, overflowed when
 * a fleet of clients connected at once (5,000 over 8 s in `deno task bench clients`: `ss`
 * showed Recv-Q 512/511 for seconds); the kernel then drops the SYNs past it and each of
 * those clients waits for its retransmission (1, 3, 7 s…), so the crowd's first sends took
 * 8 s at the median. The kernel caps it at `net.core.somaxconn` (4096 on current Linux).
 */
const LISTEN_BACKLOG = 4096;

/** How long the stop waits for the requests in flight on a signal before it closes the broker. */
const SHUTDOWN_GRACE_MS = 5000;

export const BROKER_HELP = `Usage: rill broker [options]

Runs a broker: stores partition logs under --data and serves the HTTP API.

Options:
  --id N                 broker id, unique in the cluster (default 1)
  --data DIR             data directory (default ./data)
  --kv PATH|URL          Deno KV file or URL shared by the cluster (default DIR/meta.kv)
  --listen HOST:PORT     address to listen on (default 127.0.0.1:8092; port 0 picks one)
  --advertised-url URL   URL clients and brokers reach this broker at
                         (default http://HOST:PORT of --listen)
  --min-free-bytes N     refuse produce (KAFKA_STORAGE_ERROR) while the disk of --data or
                         --kv has less than N bytes free (default 67108864; 0 = off)
  --kv-reserve-bytes N   a file of N bytes kept next to the --kv file and deleted when a KV
                         write finds the disk full (default 8388608; 0 = none)
  --request-body-timeout-ms N  a request body must arrive within N ms of being read,
                         else 408 REQUEST_BODY_TIMEOUT (default 30000)
  --ws-idle-timeout-ms N  a WebSocket connection silent for about N/2 ms (17N/32 to
                         18N/32) is pinged, and closed when no pong comes within another
                         N/2 (default 30000; 0 = never)
  --kafka-listen HOST:PORT  Kafka wire-protocol listener for Kafka clients (kcat,
                         librdkafka, kafkajs); default the --listen host with port + 1000
                         (127.0.0.1:9092 by default; port 0 when --listen has port 0);
                         TLS (SASL_SSL) with --tls-cert, SASL/PLAIN required with --auth
  --kafka-advertised HOST:PORT  address Kafka clients are told to connect to
                         (default: the --kafka-listen address)
  --no-kafka             do not listen for Kafka clients
${SECURITY_HELP}${REPLICATION_HELP}${OBSERVE_HELP}  -h, --help             show this help

Stop it with Ctrl-C or SIGTERM: it finishes in-flight appends (requests get up to 5 s),
closes its WebSocket connections (1001, going away) and closes its logs cleanly.
`;

/** The help text of `rill follower`. */
export const FOLLOWER_HELP = BROKER_HELP
  .replace(
    /^Usage: rill broker \[options\]\n\nRuns a broker: [^\n]*\n/,
    `Usage: rill follower [options]

Runs an observer replica (for edge sites): copies the committed records of the topics it is
given (--topics; default all) from their leaders into --data and serves reads of them (JSON,
raw batches, SSE) close to consumers. It never leads, is never in an ISR, never counts
toward acks=all and never becomes the controller; writes sent to it are refused with
NOT_LEADER_OR_FOLLOWER naming the leader, which clients follow. It needs the cluster's KV
(--kv) like a broker, and with --auth the cluster secret.
`,
  )
  .replaceAll("rill broker", "rill follower");

const HOST_PORT = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/;

/** Parsed `rill broker` options. */
export interface BrokerArgs {
  id: number;
  dataDir: string;
  kv?: string;
  hostname: string;
  port: number;
  advertisedUrl?: string;
  /** the Kafka listener's address, or null when it is off */
  kafka: { hostname: string; port: number; advertised?: string } | null;
  help: boolean;
  /** `--ws-idle-timeout-ms` (undefined: the endpoint's default) */
  wsIdleTimeoutMs: number | undefined;
  /** --auth, TLS, cluster secret and quota flags */
  security: SecurityArgs;
  /** timing overrides and the observer's topics */
  replication: ReplicationArgs;
  /** log format and level, metrics address */
  observe: ObserveArgs;
}

/**
 * Parses the command line of `rill broker`.
 *
 * @param args the arguments after `broker`
 * @returns the options with defaults applied
 * @throws {UsageError} on an unknown option or a malformed value
 * @example
 * ```ts
 * parseBrokerArgs(["--listen", "127.0.0.1:0"]).port; // 0
 * ```
 */
export function parseBrokerArgs(args: string[]): BrokerArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        id: { type: "string" },
        data: { type: "string" },
        kv: { type: "string" },
        listen: { type: "string" },
        "advertised-url": { type: "string" },
        "request-body-timeout-ms": { type: "string" },
        "ws-idle-timeout-ms": { type: "string" },
        "min-free-bytes": { type: "string" },
        "kv-reserve-bytes": { type: "string" },
        "kafka-listen": { type: "string" },
        "kafka-advertised": { type: "string" },
        "no-kafka": { type: "boolean" },
        help: { type: "boolean", short: "h" },
        ...SECURITY_OPTIONS,
        ...REPLICATION_OPTIONS,
        ...OBSERVE_OPTIONS,
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message.split("\n")[0] : String(e));
  }
  const idText = values.id ?? "1";
  if (!/^\d{1,9}$/.test(idText)) {
    throw new UsageError(`--id must be a non-negative integer, got "${idText}"`);
  }
  const listen = values.listen ?? "127.0.0.1:8092";
  const m = HOST_PORT.exec(listen);
  if (!m || Number(m[3]) > 65535) {
    throw new UsageError(`--listen must be HOST:PORT (e.g. 127.0.0.1:8092), got "${listen}"`);
  }
  const advertisedUrl = values["advertised-url"];
  if (advertisedUrl !== undefined && !URL.canParse(advertisedUrl)) {
    throw new UsageError(`--advertised-url must be a URL, got "${advertisedUrl}"`);
  }
  if (values.data === "") throw new UsageError(`--data must not be empty`);
  const replication = parseReplicationArgs(values);
  const bodyTimeout = values["request-body-timeout-ms"];
  if (bodyTimeout !== undefined) {
    if (!/^\d{1,9}$/.test(bodyTimeout) || Number(bodyTimeout) < 1) {
      throw new UsageError(
        `--request-body-timeout-ms must be a positive integer of milliseconds, got "${bodyTimeout}"`,
      );
    }
    replication.config.requestBodyTimeoutMs = Number(bodyTimeout);
  }
  const wsIdle = values["ws-idle-timeout-ms"];
  if (wsIdle !== undefined && !/^\d{1,9}$/.test(wsIdle)) {
    throw new UsageError(
      `--ws-idle-timeout-ms must be a non-negative integer of milliseconds, got "${wsIdle}"`,
    );
  }
  for (
    const [flag, key] of [
      ["min-free-bytes", "minFreeBytes"],
      ["kv-reserve-bytes", "kvReserveBytes"],
    ] as const
  ) {
    const v = values[flag];
    if (v === undefined) continue;
    if (!/^\d{1,15}$/.test(v)) {
      throw new UsageError(`--${flag} must be a non-negative integer of bytes, got "${v}"`);
    }
    replication.config[key] = Number(v);
  }
  const hostname = m[1] ?? (m[2] || "0.0.0.0");
  const port = Number(m[3]);
  let kafka: BrokerArgs["kafka"] = null;
  if (values["no-kafka"]) {
    if (values["kafka-listen"] !== undefined || values["kafka-advertised"] !== undefined) {
      throw new UsageError(
        `--no-kafka cannot be combined with --kafka-listen or --kafka-advertised`,
      );
    }
  } else {
    const kl = values["kafka-listen"];
    if (kl === undefined) {
      kafka = { hostname, port: port === 0 || port + 1000 > 65535 ? 0 : port + 1000 };
    } else {
      const km = HOST_PORT.exec(kl);
      if (!km || Number(km[3]) > 65535) {
        throw new UsageError(`--kafka-listen must be HOST:PORT (e.g. 127.0.0.1:9092), got "${kl}"`);
      }
      kafka = { hostname: km[1] ?? (km[2] || "0.0.0.0"), port: Number(km[3]) };
    }
    const ka = values["kafka-advertised"];
    if (ka !== undefined) {
      const am = HOST_PORT.exec(ka);
      if (!am || am[1] === undefined && !am[2] || Number(am[3]) > 65535 || Number(am[3]) === 0) {
        throw new UsageError(
          `--kafka-advertised must be HOST:PORT with a host and a port (e.g. kafka.example.com:9092), got "${ka}"`,
        );
      }
      kafka.advertised = ka;
    }
  }
  return {
    id: Number(idText),
    dataDir: values.data ?? "./data",
    kv: values.kv,
    hostname,
    port,
    advertisedUrl,
    kafka,
    help: values.help ?? false,
    wsIdleTimeoutMs: wsIdle === undefined ? undefined : Number(wsIdle),
    security: parseSecurityArgs(values),
    replication,
    observe: parseObserveArgs(values),
  };
}

function urlHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

/**
 * Runs a broker until SIGINT or SIGTERM, then stops it gracefully.
 *
 * @param args the arguments after `broker` (or `follower`)
 * @param role "broker", or "follower" for an observer replica that never leads
 * @returns once the broker has stopped
 * @throws {UsageError} on a bad command line; an Error when the broker cannot start
 * @example
 * ```ts
 * await runBroker(["--listen", "127.0.0.1:0", "--data", "/tmp/rill"]);
 * ```
 */
export async function runBroker(args: string[], role: BrokerRole = "broker"): Promise<void> {
  const opts = parseBrokerArgs(args);
  if (opts.help) {
    await Deno.stdout.write(
      new TextEncoder().encode(role === "broker" ? BROKER_HELP : FOLLOWER_HELP),
    );
    return;
  }
  await installNativeCrc32c();
  const tls = await readTls(opts.security);
  const logger = new Logger({
    format: opts.observe.logFormat,
    level: opts.observe.logLevel,
    brokerId: opts.id,
    role,
  });
  if (opts.security.clusterSecret) logger.addSecret(opts.security.clusterSecret);
  const metrics = new Metrics();
  const broker = await Broker.open({
    id: opts.id,
    dataDir: opts.dataDir,
    kv: opts.kv,
    role,
    config: opts.replication.config,
    observeTopics: opts.replication.topics,
    rack: opts.replication.rack,
    logger,
    metrics,
  });
  const security = await prepareSecurity(
    broker.kv,
    opts.security,
    opts.hostname,
    // The bootstrap token notice is the one line that carries a secret on purpose: the
    // operator needs it once. It is written as is, not as a log event.
    (l) => /bootstrap token/.test(l) ? console.error(l) : logger.warn(l),
  );
  // Followers fetch from leaders as the inter-broker principal.
  if (security.clusterSecret) {
    logger.addSecret(security.clusterSecret);
    broker.replication.requestHeaders = { "Rill-Cluster-Secret": security.clusterSecret };
  }
  // The HTTP app and the WebSocket endpoint share one security state (keys, ACLs, quotas).
  const installed = buildSecurity(broker.kv, security);
  const app = createApp(broker, security, installed);
  const ws = wsEndpoint(
    broker,
    installed,
    opts.wsIdleTimeoutMs === undefined ? {} : { idleTimeoutMs: opts.wsIdleTimeoutMs },
  );
  const malloc = tuneMalloc();
  let server: Deno.HttpServer<Deno.NetAddr>;
  let addr: Deno.NetAddr;
  try {
    addr = await new Promise<Deno.NetAddr>((resolve, reject) => {
      try {
        server = Deno.serve(
          {
            hostname: opts.hostname,
            port: opts.port,
            tcpBacklog: LISTEN_BACKLOG,
            onListen: resolve,
            ...tls,
          },
          // The info's `completed` tells the fetch routes when an answer has been sent.
          (req, info) => ws(req) ?? app.fetch(req, info),
        );
      } catch (e) {
        reject(e);
      }
    });
  } catch (e) {
    await broker.close();
    malloc.close();
    if (e instanceof Deno.errors.AddrInUse) {
      throw new Error(`Cannot listen on ${opts.hostname}:${opts.port}: the address is in use`);
    }
    throw e;
  }
  const scheme = tls ? "https" : "http";
  const listenUrl = `${scheme}://${urlHost(addr.hostname)}:${addr.port}`;
  const advertised = opts.advertisedUrl ??
    (addr.hostname === "0.0.0.0" || addr.hostname === "::"
      ? `${scheme}://${urlHost(Deno.hostname())}:${addr.port}`
      : listenUrl);
  const httpConnections = connectionCounter(addr.port);
  metrics.gauge({
    name: "rill_http_connections",
    help:
      "Established TCP connections to the broker's listener, WebSocket ones included (Linux; absent elsewhere; read at most every 10 s).",
    collect: async (g) => {
      const n = await httpConnections();
      if (n !== null) g.set(n);
    },
  });
  let metricsServer: Deno.HttpServer<Deno.NetAddr> | null = null;
  if (opts.observe.metricsListen) {
    const { hostname, port } = opts.observe.metricsListen;
    try {
      const at = await new Promise<Deno.NetAddr>((resolve) => {
        metricsServer = Deno.serve({ hostname, port, onListen: resolve }, metricsHandler(metrics));
      });
      logger.info(`metrics on http://${urlHost(at.hostname)}:${at.port}/metrics`);
    } catch (e) {
      await server!.shutdown();
      await broker.close();
      malloc.close();
      throw new Error(`Cannot listen on ${hostname}:${port} for metrics: ${(e as Error).message}`);
    }
  }
  let kafka: KafkaListener | null = null;
  if (opts.kafka) {
    try {
      kafka = KafkaListener.listen(broker, {
        hostname: opts.kafka.hostname,
        port: opts.kafka.port,
        advertised: opts.kafka.advertised,
        tls,
        security: securityOf(app),
      });
    } catch (e) {
      await (metricsServer as Deno.HttpServer<Deno.NetAddr> | null)?.shutdown();
      await server!.shutdown();
      await broker.close();
      malloc.close();
      throw e;
    }
  }
  await broker.register(advertised, kafka?.advertised);

  let signalled: (name: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => signalled = resolve);
  let count = 0;
  const handlers = (["SIGINT", "SIGTERM"] as const).map((sig) => {
    const handler = () => {
      if (++count > 1) Deno.exit(130);
      signalled(sig);
    };
    Deno.addSignalListener(sig, handler);
    return { sig, handler };
  });
  if (kafka) {
    const k = kafka.addr;
    console.log(
      `rill ${role} ${opts.id} kafka listening on ${urlHost(k.hostname)}:${k.port}` +
        (kafka.advertised !== `${urlHost(k.hostname)}:${k.port}`
          ? ` (advertised ${kafka.advertised})`
          : ""),
    );
  }
  console.log(`rill ${role} ${opts.id} listening on ${listenUrl}`);

  const sig = await stopped;
  logger.info(`${sig} received, shutting down`);
  broker.beginShutdown();
  // WebSocket connections first: the server's shutdown waits for each, and one whose peer
  // stopped reading would never end on its own.
  ws.close(`Broker ${opts.id} is shutting down`);
  // The servers finish the requests in flight, but an answer to a client that stopped
  // reading never finishes (Deno's graceful shutdown has no deadline, and cannot be made
  // forceful once begun): past the grace the broker closes without waiting for them, and
  // the process exits once it has stopped (cli/main.ts), which closes those connections.
  let grace: ReturnType<typeof setTimeout> | undefined;
  const finished = await Promise.race([
    Promise.all([
      server!.shutdown(),
      kafka?.close(),
      (metricsServer as Deno.HttpServer<Deno.NetAddr> | null)?.shutdown(),
    ]).then(() => true),
    new Promise<false>((resolve) => grace = setTimeout(() => resolve(false), SHUTDOWN_GRACE_MS)),
  ]);
  clearTimeout(grace);
  if (!finished) {
    logger.warn(
      `requests still in flight ${
        SHUTDOWN_GRACE_MS / 1000
      } s after ${sig} (a client not reading its answer?): stopping without them`,
    );
  }
  await broker.close();
  metrics.close();
  malloc.close();
  for (const { sig, handler } of handlers) Deno.removeSignalListener(sig, handler);
  logger.info(`stopped`);
}

if (import.meta.main) {
  try {
    await runBroker(Deno.args);
  } catch (e) {
    console.error(`rill: ${e instanceof Error ? e.message.split("\n")[0] : e}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
