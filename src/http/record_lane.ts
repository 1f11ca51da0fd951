/**
 * The record lane: a client's raw-batch produce and raw-batch fetch answered without Hono's
 * middleware chain, as the replica fetch lane (replica_fetch_lane.ts) answers followers.
 *
 * ```
 * POST /v1/topics/{t}/records?partition=P[&acks=A]      Content-Type: application/vnd.rill.batch
 * GET  /v1/topics/{t}/partitions/{p}/records?offset=…[&maxBytes&maxWaitMs&minBytes]
 *      Accept: application/vnd.rill.batch…
 * ```
 *
 * These are the requests of the client library's producer and consumer (src/client), one
 * per batch. When each batch is one record, the broker's cost per request is what counts:
 * through the app a produce costs a Hono context, the router, six middlewares (limits, CORS,
 * authentication, quotas, body timeout, and the sub-app's) and a CORS header set after the
 * response is made, about as much CPU again as the append itself (see bench/clients_bench.ts
 * for the figures of the same run against a bare Deno.serve).
 *
 * The lane takes only a request the app would answer from routes/records.ts after
 * middlewares that would let it through and change nothing:
 *
 * - the exact path, with only those query parameters, each at most once and unencoded;
 *   for a produce, a raw-batch Content-Type; for a fetch, an Accept naming raw batches and
 *   not server-sent events, and no replica parameters (the replica lane takes those);
 * - within the URL and header limits (quotas.ts);
 * - auth off; or with auth on, the cluster secret presented and right, or an API key that
 *   authenticates and whose ACLs allow the operation (`Security.authenticate`, `allowed`);
 * - no request or byte rates configured, a body reservation or long-poll slot free
 *   (quotas.ts `holdProduce`, `holdFetch`).
 *
 * Anything else goes through the app, which answers (and audits, or throttles) as it always
 * did. What the lane answers is what the app would: the same checks in the same order,
 * `Broker.produceBatches` / `Broker.fetch`, the same headers (CORS included), and errors as
 * errors.ts maps them.
 *
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import { validateTopicName } from "../coordination/topics.ts";
import type { Operation } from "../coordination/acls.ts";
import { ANONYMOUS, BROKER_PRINCIPAL, CLUSTER_SECRET_HEADER, type Principal } from "./auth.ts";
import { errorAnswer } from "./errors.ts";
import {
  acksQuery,
  BodyDeadlines,
  offsetQuery,
  partitionParam,
  readRequestBytes,
} from "./params.ts";
import { BATCH_MEDIA_TYPE, fetchSizes, lentBatchAnswer, serveCompleted } from "./routes/records.ts";
import type { InstalledSecurity } from "./security.ts";

const PRODUCE_PATH = /^\/v1\/topics\/([^/%]+)\/records$/;
const FETCH_PATH = /^\/v1\/topics\/([^/%]+)\/partitions\/([^/%]+)\/records$/;
const PRODUCE_PARAMS = new Set(["partition", "acks"]);
const FETCH_PARAMS = new Set(["offset", "maxWaitMs", "maxBytes", "minBytes"]);
/** Values the lane leaves to the app: anything percent- or plus-encoded. */
const ENCODED = /[%+]/;
const ANONYMOUS_PRINCIPAL: Principal = { name: ANONYMOUS, superuser: true, keyId: null };
const BROKER: Principal = { name: BROKER_PRINCIPAL, superuser: true, keyId: null };

/** A lane's handler: an answer, or null to leave the request to the app. */
export type Lane = (req: Request, env?: unknown) => Promise<Response> | null;

/**
 * Makes the record lane of an app.
 *
 * @param broker the broker
 * @param installed the app's security and quota state
 * @param cors the CORS headers the app puts on every response
 * @param app the app's own handler, for a request the lane finds it cannot take after all
 *   (credentials that do not authenticate, an ACL that denies: the app answers and audits)
 * @returns the lane
 * @example
 * ```ts
 * const lane = recordLane(broker, installed, cors, dispatch);
 * const handler = (req: Request, info: Deno.ServeHandlerInfo) => lane(req, info) ?? dispatch(req, info);
 * ```
 */
export function recordLane(
  broker: Broker,
  installed: InstalledSecurity,
  cors: Record<string, string>,
  app: (req: Request, env?: unknown) => Response | Promise<Response>,
): Lane {
  const { security, quotas } = installed;
  const cfg = broker.config;
  const deadlines = new BodyDeadlines(cfg.requestBodyTimeoutMs);
  const jsonHeaders = { "content-type": "application/json", ...cors };

  return (req, env) => {
    const method = req.method;
    if (method !== "POST" && method !== "GET") return null;
    const url = req.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const queryStart = url.indexOf("?", pathStart);
    if (pathStart < 0 || queryStart < 0 || url.includes("#", queryStart)) return null;
    const path = url.slice(pathStart, queryStart);
    const produce = method === "POST";
    const match = (produce ? PRODUCE_PATH : FETCH_PATH).exec(path);
    if (match === null) return null;
    const query = url.slice(queryStart + 1);
    const params = new Map<string, string>();
    const allowed = produce ? PRODUCE_PARAMS : FETCH_PARAMS;
    for (const pair of query.split("&")) {
      const eq = pair.indexOf("=");
      if (eq < 0) return null;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (!allowed.has(name) || params.has(name) || ENCODED.test(value)) return null;
      params.set(name, value);
    }
    const headers = req.headers;
    if (produce) {
      if (!params.has("partition")) return null;
      const type = headers.get("content-type");
      if (type === null || !type.toLowerCase().startsWith(BATCH_MEDIA_TYPE)) return null;
    } else {
      const accept = headers.get("accept");
      if (accept === null || !accept.includes(BATCH_MEDIA_TYPE)) return null;
      if (accept.includes("text/event-stream")) return null;
    }
    if (quotas.limitRefusal(req) !== null) return null;
    const topicRaw = match[1];
    const operation: Operation = produce ? "write" : "read";
    if (!security.auth) return hold(ANONYMOUS_PRINCIPAL);
    const secret = headers.get(CLUSTER_SECRET_HEADER);
    if (secret !== null) return security.clusterSecretMatches(secret) ? hold(BROKER) : null;
    return security.authenticate(headers.get("authorization") ?? undefined).then((who) =>
      "error" in who || !security.allowed(who, { type: "topic", name: topicRaw }, operation)
        ? app(req, env) // the app answers 401 or 403, and audits it
        : hold(who) ?? app(req, env)
    );

    // What the quota middleware does (a body reservation, a long-poll slot), then the answer;
    // null when the middleware would do more or refuse it.
    function hold(who: Principal): Promise<Response> | null {
      const release = produce
        ? quotas.holdProduce(Number(headers.get("content-length") ?? NaN))
        : quotas.holdFetch(who.name, security.auth, query);
      if (release === null) return null;
      const work = produce
        ? produceAnswer(req, topicRaw, params)
        : fetchAnswer(topicRaw, match![2], params, serveCompleted(env));
      return work.catch((e) => {
        const { status, body } = errorAnswer(e, method, path);
        return new Response(JSON.stringify(body), { status, headers: jsonHeaders });
      }).finally(release);
    }
  };

  async function produceAnswer(
    req: Request,
    topicRaw: string,
    params: Map<string, string>,
  ): Promise<Response> {
    // The checks of routes/records.ts, in its order.
    const topic = validateTopicName(topicRaw);
    const acks = acksQuery(params.get("acks"));
    const partition = partitionParam(params.get("partition")!);
    const body = await readRequestBytes(req, cfg.maxRequestBytes, deadlines);
    const result = await broker.produceBatches(topic, partition, body, acks);
    if (result === null) return new Response(null, { status: 204, headers: cors });
    return new Response(JSON.stringify(result), { headers: jsonHeaders });
  }

  async function fetchAnswer(
    topicRaw: string,
    partitionRaw: string,
    params: Map<string, string>,
    completed: Promise<void> | undefined,
  ): Promise<Response> {
    const topic = validateTopicName(topicRaw);
    const partition = partitionParam(partitionRaw);
    const offset = offsetQuery(params.get("offset"));
    const sizes = fetchSizes((name) => params.get(name), cfg);
    return await lentBatchAnswer(
      broker.readBuffers,
      completed,
      offset,
      (alloc) => broker.fetch(topic, partition, offset, { ...sizes, alloc }),
      cors,
    );
  }
}
