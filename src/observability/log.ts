/**
 * Structured logs: one line per event on stderr, as text or JSON (`--log-format`), filtered
 * by level (`--log-level`), each with the broker id and role, and where it applies the
 * topic, partition and error code.
 *
 * ```
 * text: 2026-12-05T08:20:00.000Z INFO  rill broker 1: opened 2 partition log(s) …  topic=orders partition=0
 * json: {"time":"2026-12-05T08:20:00.000Z","level":"info","broker":1,"role":"broker","msg":"…","topic":"orders","partition":0}
 * ```
 *
 * No secret reaches a line: {@linkcode redact} masks API key secrets (`rk_….SECRET`),
 * bootstrap tokens (`rb_…`), `Bearer`/`Basic` credentials and every value registered with
 * {@linkcode Logger.addSecret} (the cluster secret) in the message and in every field, and
 * fields named like a secret (`secret`, `password`, `token`, `authorization`, `apiKey`) are
 * replaced whole.
 *
 * @module
 */

/** Log levels, least to most severe. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];
/** Log line formats. */
export const LOG_FORMATS = ["text", "json"] as const;
/** A log line format. */
export type LogFormat = typeof LOG_FORMATS[number];

/** Fields of an event (all optional); more may be added, with JSON-able values. */
export interface LogFields {
  /** the topic concerned */
  topic?: string;
  /** the partition concerned */
  partition?: number;
  /** the Rill error code (e.g. NOT_LEADER_OR_FOLLOWER) */
  code?: string;
  [field: string]: unknown;
}

/** Where a line goes and what it carries. */
export interface LoggerOptions {
  /** "text" (default) or "json" */
  format?: LogFormat;
  /** the least severe level written (default "info") */
  level?: LogLevel;
  /** the broker id */
  brokerId?: number;
  /** the role ("broker", "follower") */
  role?: string;
  /** writes one line (default: stderr) */
  write?: (line: string) => void;
  /** the clock (for tests) */
  now?: () => number;
}

const SECRET_FIELD = /secret|password|passwd|token|authorization|api[-_]?key|credential/i;
const PATTERNS: [RegExp, string][] = [
  [/\b(Bearer|Basic)\s+[A-Za-z0-9_\-+/=.]+/gi, "$1 [redacted]"],
  [/\b(rk_[0-9a-f]{16})\.[A-Za-z0-9_\-+/=]+/g, "$1.[redacted]"],
  [/\brb_[A-Za-z0-9_\-+/=]{20,}/g, "rb_[redacted]"],
];

/**
 * Masks credentials in a text.
 *
 * @param text any text
 * @param secrets exact values to mask too
 * @returns the text with every credential replaced by `[redacted]`
 * @example
 * ```ts
 * redact("auth with rk_0123456789abcdef.s3cr3t"); // "auth with rk_0123456789abcdef.[redacted]"
 * ```
 */
export function redact(text: string, secrets: Iterable<string> = []): string {
  let out = text;
  for (const [re, to] of PATTERNS) out = out.replace(re, to);
  for (const s of secrets) if (s.length >= 4) out = out.replaceAll(s, "[redacted]");
  return out;
}

/**
 * A logger of one broker process.
 *
 * @example
 * ```ts
 * const log = new Logger({ format: "json", level: "debug", brokerId: 1, role: "broker" });
 * log.warn("could not write the isr", { topic: "orders", partition: 0, code: "REQUEST_TIMED_OUT" });
 * ```
 */
export class Logger {
  readonly format: LogFormat;
  readonly level: LogLevel;
  readonly #min: number;
  readonly #write: (line: string) => void;
  readonly #now: () => number;
  readonly #base: { broker?: number; role?: string };
  readonly #secrets: Set<string>;

  /** @param opts format, level, identity and sink */
  constructor(opts: LoggerOptions = {}, secrets: Set<string> = new Set()) {
    this.format = opts.format ?? "text";
    this.level = opts.level ?? "info";
    this.#min = LOG_LEVELS.indexOf(this.level);
    this.#write = opts.write ?? ((line) => console.error(line));
    this.#now = opts.now ?? Date.now;
    this.#base = { broker: opts.brokerId, role: opts.role };
    this.#secrets = secrets;
  }

  /**
   * A logger for another broker id or role, sharing the sink, level and secrets.
   *
   * @param brokerId the broker id
   * @param role the role
   * @returns the logger
   */
  forBroker(brokerId: number, role: string): Logger {
    return new Logger({
      format: this.format,
      level: this.level,
      brokerId,
      role,
      write: this.#write,
      now: this.#now,
    }, this.#secrets);
  }

  /**
   * Masks `secret` in every later line (of this logger and those made from it).
   *
   * @param secret an exact value, e.g. the cluster secret
   */
  addSecret(secret: string): void {
    this.#secrets.add(secret);
  }

  /**
   * Whether lines of `level` are written (to skip building costly ones).
   *
   * @param level the level
   * @returns true when written
   */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.#min;
  }

  /** Logs at debug level. */
  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }

  /** Logs at info level. */
  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }

  /** Logs at warn level. */
  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }

  /** Logs at error level. */
  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }

  /**
   * Writes one line, if `level` is enabled.
   *
   * @param level the level
   * @param msg what happened, one sentence
   * @param fields topic, partition, code and more
   */
  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (LOG_LEVELS.indexOf(level) < this.#min) return;
    const time = new Date(this.#now()).toISOString();
    const clean: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      clean[k] = SECRET_FIELD.test(k) ? "[redacted]" : v;
    }
    let line: string;
    if (this.format === "json") {
      line = JSON.stringify({
        time,
        level,
        broker: this.#base.broker,
        role: this.#base.role,
        msg,
        ...clean,
      });
    } else {
      const who = this.#base.broker === undefined
        ? "rill"
        : `rill ${this.#base.role ?? "broker"} ${this.#base.broker}:`;
      const extra = Object.entries(clean).map(([k, v]) =>
        `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`
      );
      line = `${time} ${level.toUpperCase().padEnd(5)} ${who} ${msg}${
        extra.length ? "  " + extra.join(" ") : ""
      }`;
    }
    this.#write(redact(line, this.#secrets));
  }

  /**
   * A `(line, fields?) => void` sink for code that logs plain lines: each becomes an event
   * at `level`.
   *
   * @param level the level of those lines
   * @returns the sink
   */
  lines(level: LogLevel = "info"): (line: string, fields?: LogFields) => void {
    return (line, fields) => this.log(level, line, fields);
  }
}

/**
 * Parses a `--log-level` value.
 *
 * @param v the value
 * @returns the level
 * @throws {RangeError} naming the accepted values
 */
export function parseLogLevel(v: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(v)) return v as LogLevel;
  throw new RangeError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got "${v}"`);
}

/**
 * Parses a `--log-format` value.
 *
 * @param v the value
 * @returns the format
 * @throws {RangeError} naming the accepted values
 */
export function parseLogFormat(v: string): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(v)) return v as LogFormat;
  throw new RangeError(`--log-format must be text or json, got "${v}"`);
}
