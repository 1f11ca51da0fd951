/**
 * Errors to HTTP in one place: a RillError becomes its status and
 * `{"error":{"code","message","retriable",…}}`; anything else is logged and becomes a 500
 * UNKNOWN_SERVER_ERROR without leaking a stack trace or a path.
 *
 * @module
 */
import type { Context } from "hono";
import { RillError } from "../protocol/errors.ts";
import { isDiskFullError } from "../coordination/kv_retry.ts";

/**
 * Hono `onError` handler for every Rill app and sub-app.
 *
 * @param err what a handler threw
 * @param c the request context
 * @returns the error response
 */
export function onError(err: Error, c: Context): Response {
  const { status, body } = errorAnswer(err, c.req.method, c.req.path);
  return c.json(body, status as 400);
}

/**
 * What {@linkcode onError} answers for an error, for a handler that runs outside Hono (the
 * replica fetch lane in replica_fetch_lane.ts): the status and the JSON body. Anything but a
 * RillError or a 4xx HTTP error is logged here.
 *
 * @param err what a handler threw
 * @param method the request method (for the log line)
 * @param path the request path (for the log line)
 * @returns the status and the body
 * @example
 * ```ts
 * const { status, body } = errorAnswer(new RillError("NOT_FOUND", "No such topic"), "GET", "/x");
 * // status 404, body {"error":{"code":"NOT_FOUND",…}}
 * ```
 */
export function errorAnswer(
  err: unknown,
  method: string,
  path: string,
): { status: number; body: ReturnType<RillError["toJSON"]> } {
  if (err instanceof RillError) return { status: err.status, body: err.toJSON() };
  // Hono's own HTTPException (e.g. from a middleware) keeps its status.
  const status = (err as { status?: number }).status;
  if (typeof status === "number" && status >= 400 && status < 500) {
    const code = status === 413 ? "RECORD_LIST_TOO_LARGE" : "INVALID_REQUEST";
    return {
      status,
      body: new RillError(code, (err as Error).message || "The request is invalid").toJSON(),
    };
  }
  if (isDiskFullError(err)) {
    console.error(`${method} ${path}: the disk is full: ${(err as Error)?.message ?? err}`);
    return {
      status: 500,
      body: new RillError(
        "KAFKA_STORAGE_ERROR",
        "The broker's disk is full: free space on it (delete topics, lower retention) and retry",
      ).toJSON(),
    };
  }
  console.error(`Unhandled error on ${method} ${path}:`, err);
  return {
    status: 500,
    body: new RillError("UNKNOWN_SERVER_ERROR", "The broker failed to handle the request")
      .toJSON(),
  };
}

/**
 * Hono `notFound` handler: 404 NOT_FOUND naming the path.
 *
 * @param c the request context
 * @returns the error response
 */
export function notFound(c: Context): Response {
  return c.json(
    new RillError("NOT_FOUND", `No route for ${c.req.method} ${c.req.path}`).toJSON(),
    404,
  );
}
