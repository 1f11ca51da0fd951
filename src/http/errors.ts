/**
 * Errors to HTTP in one place: a RillError becomes its status and
 * `{"error":{"code","message","retriable",…}}`; anything else is logged and becomes a 500
 * UNKNOWN_SERVER_ERROR without leaking a stack trace or a path.
 *
 * @module
 */
import type { Context } from "hono";
import { RillError } from "../protocol/errors.ts";

/**
 * Hono `onError` handler for every Rill app and sub-app.
 *
 * @param err what a handler threw
 * @param c the request context
 * @returns the error response
 */
export function onError(err: Error, c: Context): Response {
  if (err instanceof RillError) {
    return c.json(err.toJSON(), err.status as 400);
  }
  // Hono's own HTTPException (e.g. from a middleware) keeps its status.
  const status = (err as { status?: number }).status;
  if (typeof status === "number" && status >= 400 && status < 500) {
    const code = status === 413 ? "RECORD_LIST_TOO_LARGE" : "INVALID_REQUEST";
    return c.json(
      new RillError(code, err.message || "The request is invalid").toJSON(),
      status as 400,
    );
  }
  console.error(`Unhandled error on ${c.req.method} ${c.req.path}:`, err);
  return c.json(
    new RillError("UNKNOWN_SERVER_ERROR", "The broker failed to handle the request").toJSON(),
    500,
  );
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
