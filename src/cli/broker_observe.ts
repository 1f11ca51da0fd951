/**
 * The observability flags of `rill broker` and `rill follower`: the log format and level,
 * and a separate address for `GET /metrics`.
 *
 * @module
 */
import {
  type LogFormat,
  type LogLevel,
  parseLogFormat,
  parseLogLevel,
} from "../observability/log.ts";
import { UsageError } from "./common.ts";

/** The parseArgs options of the observability flags. */
export const OBSERVE_OPTIONS = {
  "log-format": { type: "string" },
  "log-level": { type: "string" },
  "metrics-listen": { type: "string" },
} as const;

/** The help lines of the observability flags. */
export const OBSERVE_HELP =
  `  --log-format text|json     log lines as text (default) or one JSON object a line
  --log-level LEVEL          debug (adds one line per request), info (default), warn, error
  --metrics-listen HOST:PORT also serve GET /metrics here, without authentication
                             (GET /metrics on the main address needs describe on the
                             cluster when --auth is on)
`;

/** Parsed observability flags. */
export interface ObserveArgs {
  /** the log line format */
  logFormat: LogFormat;
  /** the least severe level logged */
  logLevel: LogLevel;
  /** the separate metrics address, if any */
  metricsListen?: { hostname: string; port: number };
}

/**
 * Reads the observability flags from parsed values.
 *
 * @param values the values parseArgs returned
 * @returns format, level and metrics address
 * @throws {UsageError} on a bad value
 * @example
 * ```ts
 * parseObserveArgs({ "log-format": "json" }).logFormat; // "json"
 * ```
 */
export function parseObserveArgs(
  values: Record<string, string | boolean | string[] | undefined>,
): ObserveArgs {
  const text = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === "string" ? v : undefined;
  };
  let logFormat: LogFormat;
  let logLevel: LogLevel;
  try {
    logFormat = parseLogFormat(text("log-format") ?? "text");
    logLevel = parseLogLevel(text("log-level") ?? "info");
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const listen = text("metrics-listen");
  let metricsListen: ObserveArgs["metricsListen"];
  if (listen !== undefined) {
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
    if (!m || Number(m[3]) > 65535) {
      throw new UsageError(
        `--metrics-listen must be HOST:PORT (e.g. 127.0.0.1:9644), got "${listen}"`,
      );
    }
    metricsListen = { hostname: m[1] ?? (m[2] || "0.0.0.0"), port: Number(m[3]) };
  }
  return { logFormat, logLevel, metricsListen };
}
