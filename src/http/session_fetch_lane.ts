/**
 * The session fetch lane: a follower's multi-partition fetch answered without Hono's
 * middleware chain, as replica_fetch_lane.ts answers a follower's per-partition fetch.
 *
 * ```
 * POST /v1/fetch    Content-Type: application/json    Accept: application/vnd.rill.fetch
 *   {"replicaId", "partitions":[{"topic","partition","offset","maxBytes","leaderEpoch"}], …}
 * ```
 *
 * A follower copies every partition it follows from a leader with one such request at a time
 * (leader_fetcher.ts), so every replicated byte crosses it once per follower. Through the
 * app it costs what replica_fetch_lane.ts describes (a Hono context, the router, five
 * middlewares, CORS headers set after the response is made); measured on the replication
 * benchmark's RF 3 acks=all load, follower sessions through the app took ~9 % more CPU per
 * MB produced than per-partition follower fetches through their lane.
 *
 * The lane takes only a request the app would answer from routes/fetch.ts after
 * middlewares that would let it through and change nothing:
 *
 * - a POST of exactly `/v1/fetch` (no query), a JSON Content-Type, an Accept naming the
 *   framed answer;
 * - within the URL and header limits (quotas.ts);
 * - from a trusted replica that needs no other check: the cluster secret presented and
 *   right, or auth off with no cluster secret (auth.ts's `isTrustedReplica`); the principal
 *   is then a superuser, so `authorize()` allows every topic and `requireTrustedReplica`
 *   lets `replicaId` through;
 * - with no request or fetch byte rates configured and a long-poll slot free (quotas.ts
 *   `holdFetch`, which takes the slot as the quota middleware does for a multi-partition
 *   fetch).
 *
 * Anything else returns null and goes through the app, which answers (and audits, or
 * throttles) as it always did. What the lane answers is what the app would: the body read
 * under the same size limit and body timeout, the same checks (params.ts `parseJsonObject`,
 * routes/fetch.ts `parseFetchBody`), `Broker.fetchMany`, the same framed answer
 * (`framedAnswer`) and headers (CORS included), and errors as errors.ts maps them.
 *
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import { ANONYMOUS, BROKER_PRINCIPAL } from "./auth.ts";
import { errorAnswer } from "./errors.ts";
import { BodyDeadlines, parseJsonObject, readRequestBytes } from "./params.ts";
import { FETCH_MEDIA_TYPE, framedAnswer, parseFetchBody } from "./routes/fetch.ts";
import { serveCompleted } from "./routes/records.ts";
import { laneHeaders } from "./record_lane.ts";
import { wantsCors } from "./cors.ts";
import type { InstalledSecurity } from "./security.ts";

const PATH = "/v1/fetch";
const JSON_TYPE = /^application\/json\b/i;
/** What quotas.ts `holdFetch` reads as a long poll: a multi-partition fetch counts as one. */
const LONG_POLL_QUERY = "maxWaitMs=1";

/** The CORS headers of an answer to a POST without an Origin header: none. */
const NO_HEADERS: Record<string, string> = {};

/**
 * Makes the lane of an app.
 *
 * @param broker the broker
 * @param installed the app's security and quota state
 * @param cors the CORS headers the app puts on every response
 * @returns a handler that answers a trusted replica's multi-partition fetch, or returns null
 *   for the app; its second argument is Deno.serve's handler info (for `completed`)
 * @example
 * ```ts
 * const lane = sessionFetchLane(broker, installed, { "Access-Control-Allow-Origin": "*" });
 * const handler = (req: Request, info: Deno.ServeHandlerInfo) => lane(req, info) ?? app.fetch(req, info);
 * ```
 */
export function sessionFetchLane(
  broker: Broker,
  installed: InstalledSecurity,
  cors: Record<string, string>,
): (req: Request, env?: unknown) => Promise<Response> | null {
  const { security, quotas } = installed;
  const cfg = broker.config;
  const deadlines = new BodyDeadlines(cfg.requestBodyTimeoutMs);
  return (req, env) => {
    if (req.method !== "POST") return null;
    const url = req.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    if (pathStart < 0 || url.length - pathStart !== PATH.length || !url.endsWith(PATH)) {
      return null;
    }
    const headers = laneHeaders(req.headers);
    if (!(headers.accept ?? "").includes(FETCH_MEDIA_TYPE)) return null;
    if (!JSON_TYPE.test(headers.type ?? "")) return null;
    let principal: string;
    if (security.clusterSecretMatches(headers.secret ?? undefined)) {
      principal = security.auth ? BROKER_PRINCIPAL : ANONYMOUS;
    } else if (!security.auth && !security.hasClusterSecret) {
      principal = ANONYMOUS;
    } else return null;
    if (quotas.limitRefusalOf(url, headers.bytes) !== null) return null;
    const release = quotas.holdFetch(principal, security.auth, LONG_POLL_QUERY);
    if (release === null) return null;
    // A POST: CORS headers only for a browser's (cors.ts `wantsCors`).
    const corsHeaders = wantsCors("POST", headers.origin) ? cors : NO_HEADERS;
    return answer(req, serveCompleted(env), Number(headers.length ?? NaN), corsHeaders).catch(
      (e) => {
        const { status, body } = errorAnswer(e, req.method, PATH);
        return new Response(JSON.stringify(body), {
          status,
          headers: { "content-type": "application/json", ...corsHeaders },
        });
      },
    ).finally(release);
  };

  async function answer(
    req: Request,
    completed: Promise<void> | undefined,
    declared: number,
    corsHeaders: Record<string, string>,
  ): Promise<Response> {
    const body = parseJsonObject(
      await readRequestBytes(req, cfg.maxRequestBytes, deadlines, declared),
    );
    const result = await broker.fetchMany(parseFetchBody(body, cfg));
    return framedAnswer(result, [], completed, corsHeaders);
  }
}
