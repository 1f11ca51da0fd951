/**
 * Retry with exponential backoff and jitter, as kafkajs does: the delay starts near
 * `initialRetryTime`, doubles per attempt up to `maxRetryTime`, and each delay is spread by
 * ±`factor` at random so that many clients retrying together do not retry in lockstep.
 * Only errors that say they are retriable (`RillError.retriable`, network failures) are
 * retried.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";

/**
 * How a client retries.
 *
 * @example
 * ```ts
 * new Rill({ brokers: ["http://127.0.0.1:8092"], retry: { retries: 10, initialRetryTime: 50 } });
 * ```
 */
export interface RetryOptions {
  /** how many times a failed call is retried (default 5; 0 = never) */
  retries?: number;
  /** the first delay in ms (default 100) */
  initialRetryTime?: number;
  /** the largest delay in ms (default 30,000) */
  maxRetryTime?: number;
  /** the randomisation factor: each delay is multiplied by 1 ± factor (default 0.2) */
  factor?: number;
  /** how much the delay grows per attempt (default 2) */
  multiplier?: number;
}

/**
 * The defaults of {@linkcode RetryOptions}.
 *
 * @example
 * ```ts
 * DEFAULT_RETRY.retries; // 5
 * ```
 */
export const DEFAULT_RETRY: Required<RetryOptions> = {
  retries: 5,
  initialRetryTime: 100,
  maxRetryTime: 30_000,
  factor: 0.2,
  multiplier: 2,
};

/**
 * The delay before retry number `attempt` (0 = the first retry).
 *
 * @param attempt the retry number, from 0
 * @param options the retry options (defaults filled in)
 * @param random a source of numbers in [0, 1) (injectable for tests)
 * @returns the delay in milliseconds, within [base·(1-factor), base·(1+factor)] where
 *   base = min(maxRetryTime, initialRetryTime·multiplier^attempt), capped at maxRetryTime
 * @example
 * ```ts
 * retryDelay(0, DEFAULT_RETRY, () => 0.5); // 100
 * ```
 */
export function retryDelay(
  attempt: number,
  options: Required<RetryOptions>,
  random: () => number = Math.random,
): number {
  const base = Math.min(
    options.maxRetryTime,
    options.initialRetryTime * Math.pow(options.multiplier, attempt),
  );
  const spread = base * options.factor * (random() * 2 - 1);
  return Math.max(0, Math.min(options.maxRetryTime, base + spread));
}

/**
 * Whether an error may go away if the same request is sent again: a RillError that says so,
 * or a network failure (which fetch reports as a TypeError).
 *
 * @param e anything thrown
 * @returns true when a retry may succeed
 * @example
 * ```ts
 * isRetriable(new RillError("NOT_LEADER_OR_FOLLOWER", "moved")); // true
 * ```
 */
export function isRetriable(e: unknown): boolean {
  if (e instanceof RillError) return e.retriable;
  return false;
}

/**
 * Fills in the defaults of retry options and checks them.
 *
 * @param options partial options
 * @returns complete options
 * @throws {RangeError} on a negative or non-finite value
 * @example
 * ```ts
 * resolveRetry({ retries: 2 }).initialRetryTime; // 100
 * ```
 */
export function resolveRetry(options: RetryOptions = {}): Required<RetryOptions> {
  const r = { ...DEFAULT_RETRY, ...stripUndefined(options) };
  for (const [k, v] of Object.entries(r)) {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new RangeError(`retry.${k} must be a non-negative number, got ${v}`);
    }
  }
  if (!Number.isInteger(r.retries)) {
    throw new RangeError(`retry.retries must be an integer, got ${r.retries}`);
  }
  return r;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/**
 * Runs `fn`, retrying it while it throws a retriable error, at most `options.retries` times.
 *
 * @param fn the operation; receives the attempt number (0 = first try)
 * @param options complete retry options
 * @param hooks `sleep` and `random` (injectable for tests), `onRetry` to react (e.g. refresh
 *   metadata) before the next attempt
 * @returns what `fn` returns
 * @throws the last error, once it is not retriable or the retries are used up
 * @example
 * ```ts
 * const topics = await withRetry(() => admin.listTopics(), resolveRetry());
 * ```
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: Required<RetryOptions>,
  hooks: RetryHooks = {},
): Promise<T> {
  try {
    return await fn(0);
  } catch (e) {
    return await retryAfter(e, fn, options, hooks);
  }
}

/**
 * The hooks of {@linkcode withRetry}: `sleep` and `random` (injectable for tests), `onRetry` to
 * react (e.g. refresh metadata) before the next attempt, `retriable` to choose what is retried.
 *
 * @example
 * ```ts
 * const hooks: RetryHooks = { onRetry: (e) => console.warn("retrying after", e) };
 * ```
 */
export interface RetryHooks {
  /** waits before an attempt (default: a timer) */
  sleep?: (ms: number) => Promise<void>;
  /** numbers in [0, 1) for the jitter (default Math.random) */
  random?: () => number;
  /** called before each retry */
  onRetry?: (error: unknown, attempt: number) => void | Promise<void>;
  /** whether an error is retried (default {@linkcode isRetriable}) */
  retriable?: (error: unknown) => boolean;
}

/**
 * Goes on as {@linkcode withRetry} does after its first attempt failed with `error`: retries
 * `fn` (from attempt 1) while it throws a retriable error, at most `options.retries` times in
 * all. For callers that make the first attempt themselves (no retry machinery on the path
 * that succeeds).
 *
 * @param error what the first attempt threw
 * @param fn the operation; receives the attempt number
 * @param options complete retry options
 * @param hooks as withRetry's
 * @returns what `fn` returns
 * @throws `error` or a later one, once it is not retriable or the retries are used up
 * @example
 * ```ts
 * const answer = await send(0).catch((e) => retryAfter(e, send, resolveRetry()));
 * ```
 */
export async function retryAfter<T>(
  error: unknown,
  fn: (attempt: number) => Promise<T>,
  options: Required<RetryOptions>,
  hooks: RetryHooks = {},
): Promise<T> {
  const sleep = hooks.sleep ?? delay;
  const retriable = hooks.retriable ?? isRetriable;
  let e = error;
  for (let attempt = 0;; attempt++) {
    if (attempt >= options.retries || !retriable(e)) throw e;
    await hooks.onRetry?.(e, attempt);
    await sleep(retryDelay(attempt, options, hooks.random));
    try {
      return await fn(attempt + 1);
    } catch (next) {
      e = next;
    }
  }
}

/**
 * Resolves after `ms` milliseconds.
 *
 * @param ms the delay
 * @returns a promise
 * @example
 * ```ts
 * await delay(10);
 * ```
 */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
