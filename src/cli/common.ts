/**
 * Shared pieces of the client commands: argument parsing with `--help` and `--broker`,
 * usage errors, and line output.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/**
 * The broker URL client commands use when neither `--broker` nor `$RILL_BROKER` is set.
 *
 * @example
 * ```ts
 * brokerUrl(undefined, () => undefined) === DEFAULT_BROKER; // true
 * ```
 */
export const DEFAULT_BROKER = "http://127.0.0.1:8092";

/**
 * A mistake on the command line: the CLI prints its message as one line on stderr and
 * exits with status 2 (status 1 is for failed operations).
 *
 * @example
 * ```ts
 * throw new UsageError("--partitions must be a positive integer, got \"x\"");
 * ```
 */
export class UsageError extends Error {
  /**
   * @param message one sentence saying what is wrong
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The options every client command takes. */
const COMMON_OPTIONS = {
  help: { type: "boolean", short: "h" },
  broker: { type: "string" },
  "api-key": { type: "string" },
  "ca-file": { type: "string" },
} as const;

/**
 * What {@linkcode parseCommand} returns.
 *
 * @example
 * ```ts
 * const { values, positionals } = parseCommand(["list"], {});
 * ```
 */
export interface ParsedCommand<V> {
  /** the option values */
  values: V & { help?: boolean; broker?: string; "api-key"?: string; "ca-file"?: string };
  /** the positional arguments */
  positionals: string[];
}

/**
 * Parses the arguments of one command with `node:util`'s parseArgs, adding `--help` and
 * `--broker`; unknown options and malformed values become a {@linkcode UsageError}.
 *
 * @param args the arguments after the command name
 * @param options the command's own options, in parseArgs form
 * @returns the values and positionals
 * @throws {UsageError} on an unknown option or a missing option value
 * @example
 * ```ts
 * const { values } = parseCommand(["--partitions", "3"], { partitions: { type: "string" } });
 * values.partitions; // "3"
 * ```
 */
export function parseCommand<O extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: O,
): ParsedCommand<ReturnType<typeof parseArgs<{ options: O; allowPositionals: true }>>["values"]> {
  const all = { ...COMMON_OPTIONS, ...options };
  try {
    const parsed = parseArgs({
      args: joinNegativeValues(args, all),
      options: all,
      allowPositionals: true,
      strict: true,
    });
    // deno-lint-ignore no-explicit-any
    return parsed as any;
  } catch (e) {
    throw new UsageError(rewordParseError(e, Object.keys(all)));
  }
}

/**
 * `--offset -5` as `--offset=-5`: parseArgs takes a value starting with `-` for an option,
 * so a negative number reaches the command's own check (and its message).
 */
function joinNegativeValues(
  args: string[],
  options: NonNullable<ParseArgsConfig["options"]>,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = args[i + 1];
    if (
      a.startsWith("--") && !a.includes("=") && options[a.slice(2)]?.type === "string" &&
      next !== undefined && /^-\d/.test(next)
    ) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/**
 * The edit distance of two short strings (for "did you mean").
 *
 * @param a one string
 * @param b the other
 * @returns the Levenshtein distance
 * @example
 * ```ts
 * editDistance("topcis", "topics"); // 2
 * ```
 */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The closest of `candidates` to a mistyped word, if one is close enough.
 *
 * @param word what was typed
 * @param candidates the known words
 * @returns the suggestion, or undefined
 * @example
 * ```ts
 * didYouMean("prodcue", ["produce", "consume"]); // "produce"
 * ```
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return bestDistance <= limit || (best !== undefined && best.startsWith(word) && word.length >= 3)
    ? best
    : undefined;
}

/** parseArgs' errors in Rill's words. */
function rewordParseError(e: unknown, optionNames: string[]): string {
  const raw = e instanceof Error ? e.message : String(e);
  const option = /Option '(-{1,2}[^' ]+)/.exec(raw)?.[1] ??
    /option '(-{1,2}[^' ]+)'/i.exec(raw)?.[1];
  if (/^Unknown option/.test(raw) && option) {
    const hint = option.startsWith("--") ? didYouMean(option.slice(2), optionNames) : undefined;
    return `Unknown option ${option}${hint ? `; did you mean --${hint}?` : ""} (see --help)`;
  }
  if (/argument missing/.test(raw) && option) return `${option} needs a value`;
  if (/does not take an argument/.test(raw) && option) return `${option} takes no value`;
  if (/argument is ambiguous/.test(raw) && option) {
    return `${option} needs a value (a value starting with "-" must be written ${option}=VALUE)`;
  }
  return raw.split("\n")[0];
}

/**
 * The broker URL for a client command: `--broker`, else `$RILL_BROKER`, else
 * {@linkcode DEFAULT_BROKER}.
 *
 * @param flag the value of `--broker`, if given
 * @param env reads an environment variable (injectable for tests)
 * @returns the URL, without a trailing slash
 * @throws {UsageError} if the URL is not http(s)
 * @example
 * ```ts
 * brokerUrl(undefined, () => undefined); // "http://127.0.0.1:8092"
 * ```
 */
export function brokerUrl(
  flag: string | undefined,
  env: (name: string) => string | undefined = readEnv,
): string {
  const raw = flag ?? env("RILL_BROKER") ?? DEFAULT_BROKER;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`Broker URL "${raw}" is not a valid URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`Broker URL "${raw}" must start with http:// or https://`);
  }
  return raw.replace(/\/+$/, "");
}

/**
 * How a client command reaches the broker: its URL (`--broker`), credentials (`--api-key`,
 * else `$RILL_API_KEY`) and, for `https://` brokers with a private CA, an HTTP client
 * trusting the PEM file of `--ca-file` (else `$RILL_CA_FILE`).
 *
 * @param values the parsed common options
 * @param env reads an environment variable (injectable for tests)
 * @returns the `Rill` config fields
 * @throws {UsageError} on a bad URL or an unreadable CA file
 * @example
 * ```ts
 * const rill = new Rill({ ...connection(values), retry: { retries: 2 } });
 * ```
 */
export function connection(
  values: { broker?: string; "api-key"?: string; "ca-file"?: string },
  env: (name: string) => string | undefined = readEnv,
): { brokers: string[]; auth?: string; httpClient?: unknown } {
  const out: { brokers: string[]; auth?: string; httpClient?: unknown } = {
    brokers: [brokerUrl(values.broker, env)],
  };
  const key = values["api-key"] ?? env("RILL_API_KEY");
  if (key !== undefined && key !== "") out.auth = key;
  const caFile = values["ca-file"] ?? env("RILL_CA_FILE");
  if (caFile !== undefined && caFile !== "") {
    let pem: string;
    try {
      pem = Deno.readTextFileSync(caFile);
    } catch (e) {
      throw new UsageError(
        `Cannot read --ca-file "${caFile}": ${e instanceof Error ? e.message.split("\n")[0] : e}`,
      );
    }
    // HTTP/1.1: Deno's HTTP/2 client moved large bodies at about half the rate here.
    out.httpClient = Deno.createHttpClient({ caCerts: [pem], http2: false });
  }
  return out;
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: behave as if unset
  }
}

/**
 * Parses an integer option.
 *
 * @param name the option name, for the message
 * @param raw the option's text, or undefined when absent
 * @param min the smallest accepted value
 * @returns the integer, or undefined when absent
 * @throws {UsageError} if the text is not an integer ≥ min (or beyond 2^53)
 * @example
 * ```ts
 * intOption("--partitions", "3", 1); // 3
 * ```
 */
export function intOption(name: string, raw: string | undefined, min = 0): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^-?\d+$/.test(raw.trim())) {
    throw new UsageError(`${name} must be an integer, got "${raw}"`);
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${name} is beyond 2^53: ${raw}`);
  if (n < min) throw new UsageError(`${name} must be at least ${min}, got ${n}`);
  return n;
}

/**
 * Parses repeated `--config k=v` options into an object of strings.
 *
 * @param raws the option texts
 * @returns the configs, or undefined when none were given
 * @throws {UsageError} if one has no `=` or an empty name
 * @example
 * ```ts
 * configOptions(["retention.ms=1000"]); // { "retention.ms": "1000" }
 * ```
 */
export function configOptions(raws: string[] | undefined): Record<string, string> | undefined {
  if (!raws || raws.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const raw of raws) {
    const eq = raw.indexOf("=");
    if (eq <= 0) throw new UsageError(`--config must be name=value, got "${raw}"`);
    out[raw.slice(0, eq)] = raw.slice(eq + 1);
  }
  return out;
}

/**
 * Requires exactly `count` positional arguments.
 *
 * @param positionals the positionals
 * @param names their names, for the message
 * @returns the positionals
 * @throws {UsageError} when there are fewer or more
 * @example
 * ```ts
 * const [topic] = expectPositionals(["orders"], ["TOPIC"]);
 * ```
 */
export function expectPositionals(positionals: string[], names: string[]): string[] {
  if (positionals.length < names.length) {
    throw new UsageError(`Missing ${names.slice(positionals.length).join(" ")}`);
  }
  if (positionals.length > names.length) {
    throw new UsageError(`Unexpected argument "${positionals[names.length]}"`);
  }
  return positionals;
}

const encoder = new TextEncoder();

/**
 * Where a command writes: stdout for results, stderr for messages, stdin for input.
 * Injectable so commands can be run in-process.
 *
 * @example
 * ```ts
 * const io: CliIo = processIo();
 * await io.out("done\n");
 * ```
 */
export interface CliIo {
  /** writes text to stdout */
  out(text: string): Promise<void>;
  /** writes text to stderr */
  err(text: string): Promise<void>;
  /** stdin as a byte stream */
  stdin(): ReadableStream<Uint8Array>;
}

/**
 * The process's real stdin/stdout/stderr.
 *
 * @returns an io writing through Deno's streams
 * @example
 * ```ts
 * await processIo().out("hello\n");
 * ```
 */
export function processIo(): CliIo {
  return {
    async out(text) {
      await writeAll(Deno.stdout, encoder.encode(text));
    },
    async err(text) {
      await writeAll(Deno.stderr, encoder.encode(text));
    },
    stdin() {
      return Deno.stdin.readable;
    },
  };
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let n = 0;
  while (n < bytes.length) n += await w.write(bytes.subarray(n));
}
