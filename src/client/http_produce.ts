/**
 * A producer's batch POSTed over HTTP without a promise or async frame of the transport's per
 * request (transport.ts `produceDirect` in `transport: "http"`): the outcome goes from the
 * fetch's own promise to the producer's object for the batch, as over the WebSocket
 * connection; a failure goes there as the transport's error contract has it (the broker's
 * error rebuilt from its answer; REQUEST_TIMED_OUT or BROKER_NOT_AVAILABLE when it could not
 * be reached), for the producer to go on with `produceAfter`.
 *
 * @module
 */
import { errorOf, produceAnswer, unreachedError } from "./http_answers.ts";
import type { HttpTimeouts } from "./request_deadlines.ts";
import type { FetchFn } from "./transport_options.ts";
import type { WsProduceTarget } from "./ws_connection.ts";
import type { ProducedOffsets } from "../protocol/ws_produce_frames.ts";

/** A partition's produce route key, and the path and query of its HTTP produce by acks. */
export interface ProduceRoute {
  /** `{encoded topic}/{partition}` */
  key: string;
  read: boolean;
  /** by acks, `/v1/topics/{topic}/records?partition=P&acks=A` */
  paths: Map<string, string>;
  /** the URL of its last HTTP produce, and the broker and acks it was made for */
  url?: string;
  urlBase?: string;
  urlAcks?: string;
}

/** What {@linkcode postProduce} needs of its transport. */
export interface HttpProduceContext {
  fetch: FetchFn;
  timeouts: HttpTimeouts;
  /** the headers of a raw-batch produce */
  headers: Record<string, string>;
  requestTimeoutMs: number;
  /** the broker could not be reached (not called for a routed broker) */
  unreached(base: string): void;
}

/**
 * The path and query of a partition's produce with `acks` (remembered on its route).
 *
 * @param route the partition's route
 * @param partition the partition
 * @param acks "all", "1" or "0"
 * @returns `/v1/topics/{topic}/records?partition=P&acks=A`
 */
export function producePath(route: ProduceRoute, partition: number, acks: string): string {
  let path = route.paths.get(acks);
  if (path === undefined) {
    const topic = route.key.slice(0, route.key.lastIndexOf("/"));
    path = `/v1/topics/${topic}/records?partition=${partition}&acks=${encodeURIComponent(acks)}`;
    route.paths.set(acks, path);
  }
  return path;
}

/**
 * The URL of a partition's produce to `base` with `acks`: the last one made is kept on the
 * route (a producer sends to one broker with one acks; a new string per request would be
 * joined again before fetch parses it).
 *
 * @param route the partition's route
 * @param base the broker's base URL
 * @param partition the partition
 * @param acks "all", "1" or "0"
 * @returns `{base}/v1/topics/{topic}/records?partition=P&acks=A`
 */
export function produceUrl(
  route: ProduceRoute,
  base: string,
  partition: number,
  acks: string,
): string {
  if (route.urlBase === base && route.urlAcks === acks) return route.url!;
  const url = base + producePath(route, partition, acks);
  route.url = url;
  route.urlBase = base;
  route.urlAcks = acks;
  return url;
}

/**
 * POSTs a batch and hands its outcome to `target` (its offsets, null for acks=0, or the
 * error).
 *
 * @param ctx the transport's fetch, timeouts and headers
 * @param base the broker's base URL
 * @param url what {@linkcode produceUrl} gave
 * @param routed whether the broker is a partition's known leader (not a bootstrap broker)
 * @param partition the partition
 * @param acks "all", "1" or "0"
 * @param body the batch bytes
 * @param target where the outcome goes, once
 */
export function postProduce(
  ctx: HttpProduceContext,
  base: string,
  url: string,
  routed: boolean,
  partition: number,
  acks: string,
  body: Uint8Array,
  target: WsProduceTarget,
): void {
  const timeouts = ctx.timeouts;
  const id = timeouts.begin(base, 0);
  const signal = timeouts.lastSignal;
  let fetched: Promise<Response>;
  try {
    fetched = ctx.fetch(url, {
      method: "POST",
      headers: ctx.headers,
      body: body as Uint8Array<ArrayBuffer>,
      signal,
    });
  } catch (e) {
    fetched = Promise.reject(e);
  }
  fetched.then((res) => {
    timeouts.end(id);
    if (!res.ok) {
      errorOf(res).then((e) => target.reject(e), (e) => target.reject(e));
      return;
    }
    // A JSON answer has the offsets' shape too (the producer reads either).
    const answer = produceAnswer(res, partition, acks);
    if (answer instanceof Promise) {
      answer.then((a) => target.resolve(a as ProducedOffsets | null), (e) => target.reject(e));
    } else target.resolve(answer as ProducedOffsets | null);
  }, (e) => {
    timeouts.end(id);
    if (!routed) ctx.unreached(base);
    target.reject(unreachedError(e, base, "POST", url, signal.aborted, ctx.requestTimeoutMs));
  });
}
