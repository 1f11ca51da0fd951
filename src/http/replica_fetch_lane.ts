/**
 * The replica fetch lane: a follower's fetch answered without Hono's middleware chain.
 *
 * ```
 * GET /v1/topics/{t}/partitions/{p}/records?offset=…&maxWaitMs=…&maxBytes=…&replicaId=R&leaderEpoch=E
 * ```
 *
 * Every replicated byte crosses this request once per follower, and with replication
 * factor 3 it is half of a broker's requests. Through the app it costs a Hono context, the
 * router, five middlewares (limits, CORS, authentication, quotas, body timeout) and a CORS
 * header set after the response is made, which turns Deno.serve's native response off.
 * Measured on the replication benchmark's RF 3 acks=all load (3 brokers, fresh logs), the
 * lane saved about 0.8 ms of CPU per MB produced (client and brokers together, ~9 %).
 *
 * The lane takes only a request the app would answer from the replica branch of
 * routes/records.ts, after middlewares that would let it through and change nothing:
 *
 * - a GET of exactly that path, with only those query parameters (plus `minBytes`), each at
 *   most once, unencoded, and not asking for server-sent events;
 * - within the URL and header limits (quotas.ts);
 * - from a trusted replica that needs no other check: the cluster secret presented and
 *   right, or auth off with no cluster secret (auth.ts's `isTrustedReplica`); the principal
 *   is then a superuser, so `authorize()` allows it;
 * - with no request or fetch byte rates configured and a long-poll slot free (quotas.ts
 *   `holdFetch`, which takes the slot as the quota middleware does).
 *
 * Anything else returns null and goes through the app, which answers (and audits, or
 * throttles) as it always did. What the lane answers is what the app would: the same
 * parameter checks in the same order, `Broker.replicaFetch`, the same headers (CORS
 * included), and errors as errors.ts maps them.
 *
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import { validateTopicName } from "../coordination/topics.ts";
import { ANONYMOUS, BROKER_PRINCIPAL, CLUSTER_SECRET_HEADER } from "./auth.ts";
import { errorAnswer } from "./errors.ts";
import { offsetQuery, partitionParam } from "./params.ts";
import { fetchSizes, lentBatchAnswer, replicaPosition } from "./routes/records.ts";
import type { InstalledSecurity } from "./security.ts";

const PATH = /^\/v1\/topics\/([^/%]+)\/partitions\/([^/%]+)\/records$/;
const PARAMS = new Set(["offset", "maxWaitMs", "maxBytes", "minBytes", "replicaId", "leaderEpoch"]);
/** Values the lane leaves to the app: anything percent- or plus-encoded. */
const ENCODED = /[%+]/;

/**
 * Makes the lane of an app.
 *
 * @param broker the broker
 * @param installed the app's security and quota state
 * @param cors the CORS headers the app puts on every response
 * @returns a handler that answers a plain replica fetch, or returns null for the app; its
 *   second argument is Deno.serve's handler info (for `completed`), when there is one
 * @example
 * ```ts
 * const lane = replicaFetchLane(broker, installed, { "Access-Control-Allow-Origin": "*" });
 * const handler = (req: Request, info: Deno.ServeHandlerInfo) => lane(req, info) ?? app.fetch(req, info);
 * ```
 */
export function replicaFetchLane(
  broker: Broker,
  installed: InstalledSecurity,
  cors: Record<string, string>,
): (req: Request, env?: unknown) => Promise<Response> | null {
  const { security, quotas } = installed;
  const cfg = broker.config;
  return (req, env) => {
    if (req.method !== "GET") return null;
    const url = req.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const queryStart = url.indexOf("?", pathStart);
    if (pathStart < 0 || queryStart < 0 || url.includes("#", queryStart)) return null;
    // A consumer's fetch (no replicaId) leaves at once, before any slice, match or map.
    if (!url.includes("replicaId=", queryStart)) return null;
    const path = url.slice(pathStart, queryStart);
    const match = PATH.exec(path);
    if (match === null) return null;
    const query = url.slice(queryStart + 1);
    const params = new Map<string, string>();
    for (const pair of query.split("&")) {
      const eq = pair.indexOf("=");
      if (eq < 0) return null;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (!PARAMS.has(name) || params.has(name) || ENCODED.test(value)) return null;
      params.set(name, value);
    }
    if (!params.has("replicaId")) return null;
    const accept = req.headers.get("accept") ?? "";
    if (accept.includes("text/event-stream")) return null;
    let principal: string;
    if (security.clusterSecretMatches(req.headers.get(CLUSTER_SECRET_HEADER) ?? undefined)) {
      principal = security.auth ? BROKER_PRINCIPAL : ANONYMOUS;
    } else if (!security.auth && !security.hasClusterSecret) {
      principal = ANONYMOUS;
    } else return null;
    if (quotas.limitRefusal(req) !== null) return null;
    const release = quotas.holdFetch(principal, security.auth, query);
    if (release === null) return null;
    // The leader reads the batches into a pooled buffer (read_buffers.ts), lent until the
    // answer is sent (lentBatchAnswer).
    return answer(match[1], match[2], params, env).catch((e) => {
      const { status, body } = errorAnswer(e, req.method, path);
      return new Response(JSON.stringify(body), {
        status,
        headers: { "content-type": "application/json", ...cors },
      });
    }).finally(release);
  };

  async function answer(
    topicRaw: string,
    partitionRaw: string,
    params: Map<string, string>,
    env: unknown,
  ): Promise<Response> {
    // The checks of routes/records.ts, in its order.
    const topic = validateTopicName(topicRaw);
    const partition = partitionParam(partitionRaw);
    const offset = offsetQuery(params.get("offset"));
    const query = (name: string) => params.get(name);
    const sizes = fetchSizes(query, cfg);
    const position = replicaPosition(query, offset);
    return await lentBatchAnswer(
      broker.readBuffers,
      env,
      offset,
      (alloc) => broker.replicaFetch(topic, partition, position, { ...sizes, alloc }),
      cors,
    );
  }
}
