/**
 * Two things a server WebSocket of Deno (`Deno.upgradeWebSocket`) does not do on its own,
 * which the broker's stop needs: each reaches into the socket's fields by their symbol's
 * description, as record_lane.ts does for `Headers`, and does nothing on a runtime where the
 * field or the internal call is not there (the stop then still completes; `rill broker`
 * exits once stopped whatever is left, src/cli/main.ts).
 *
 * - {@linkcode cancelIdleTimer}: Deno pings a connection silent for half its `idleTimeout`
 *   from a timer it arms on every message. In Deno 2.9 a connection that ends in an error
 *   (its peer vanished: the TCP stream ended with no close frame, "Unexpected EOF") leaves
 *   that timer armed (its close listener calls `clearTimeout`, which does not cancel the
 *   runtime's internal kind of timer), so a stopped broker's event loop stayed alive up to
 *   `idleTimeout / 2` after the last message of a client that went away.
 * - {@linkcode terminate}: `close()` sends a close frame behind whatever is queued on the
 *   socket; to a peer that stopped reading it is never written, the TCP connection stays
 *   open as long as the peer keeps it, and so does the process. There is no `terminate()`
 *   (as in npm `ws`); closing the socket's resource drops the connection.
 *
 * @module
 */

/** A socket's own field named by a symbol with this description, once found. */
const keys = new Map<string, symbol | null>();

function field(socket: WebSocket, description: string): unknown {
  let key = keys.get(description);
  if (key === undefined) {
    key = Object.getOwnPropertySymbols(socket).find((s) => s.description === description) ??
      null;
    keys.set(description, key);
  }
  return key === null ? undefined : (socket as unknown as Record<symbol, unknown>)[key];
}

/** The runtime's internal core, when it is reachable. */
interface Core {
  cancelTimer?: (timer: unknown) => void;
  tryClose?: (rid: number) => void;
}

function core(): Core | undefined {
  const d = Deno as unknown as { internal?: symbol } & Record<symbol, { core?: Core }>;
  return d.internal === undefined ? undefined : d[d.internal]?.core;
}

/**
 * Cancels the idle (ping) timer of a server WebSocket that has closed.
 *
 * @param socket a socket from `Deno.upgradeWebSocket`, after its `close` event
 * @example
 * ```ts
 * socket.addEventListener("close", () => cancelIdleTimer(socket));
 * ```
 */
export function cancelIdleTimer(socket: WebSocket): void {
  const timer = field(socket, "[[idleTimeoutTimeout]]");
  if (timer === null || typeof timer !== "object") return;
  core()?.cancelTimer?.(timer);
}

/**
 * Drops a server WebSocket's connection at once, whatever is queued on it (its `close` event
 * follows). Does nothing to a socket already released.
 *
 * @param socket a socket from `Deno.upgradeWebSocket`
 * @example
 * ```ts
 * socket.close(1001, "going away");
 * setTimeout(() => terminate(socket), 1000);
 * ```
 */
export function terminate(socket: WebSocket): void {
  const rid = field(socket, "[[rid]]");
  if (typeof rid !== "number") return;
  core()?.tryClose?.(rid);
}

/** Deno's own `[[serverHandleIdleTimeout]]` of server sockets, and its key, once found. */
let denoIdle: { key: symbol; handle: (this: WebSocket) => void } | null | undefined;

function denoIdleHandler(socket: WebSocket): typeof denoIdle {
  if (denoIdle === undefined) {
    const proto = Object.getPrototypeOf(socket);
    const key = Object.getOwnPropertySymbols(proto).find((s) =>
      s.description === "[[serverHandleIdleTimeout]]"
    );
    denoIdle = key !== undefined && typeof proto[key] === "function" &&
        field(socket, "[[idleTimeoutTimeout]]") !== undefined &&
        core()?.cancelTimer !== undefined
      ? { key, handle: proto[key] }
      : null;
  }
  return denoIdle;
}

/** The idle state of a socket that {@linkcode IdlePings} watches. */
interface IdleEntry {
  /** Deno's own handling is in charge (the socket was not heard for a whole sweep) */
  armed: boolean;
  /** a message or a pong came since the last sweep */
  heard: boolean;
}

/** Where a watched socket keeps its {@linkcode IdleEntry}. */
const ENTRY = Symbol("rill.idleEntry");
type Watched = WebSocket & { [ENTRY]: IdleEntry } & Record<symbol, unknown>;

/**
 * Deno's idle handling of server sockets without its timer per message: Deno cancels and
 * creates a timer on every message and pong a server socket receives (~2 µs of a
 * single-record produce over the broker's WebSocket). A watched socket's handler instead (its
 * own `[[serverHandleIdleTimeout]]`, which Deno calls for each) only marks it heard, and a
 * sweep every 1/32 of the timeout hands a socket not heard for a whole sweep to Deno's own
 * handling: a ping after half the timeout, a close (1001) after the other half with no pong or
 * message. A socket heard again is watched by the sweep again from its next pass. So a silent
 * connection is pinged after 17/32 to 18/32 of the timeout (Deno alone: 16/32), and closed
 * as Deno closes it.
 *
 * Where the runtime's fields are not found, sockets are left to Deno's own timer (the
 * `idleTimeout` they were upgraded with).
 *
 * @example
 * ```ts
 * const pings = new IdlePings(30_000);
 * Deno.serve((req) => {
 *   const { socket, response } = Deno.upgradeWebSocket(req, { idleTimeout: 30 });
 *   pings.watch(socket);
 *   socket.addEventListener("close", () => pings.unwatch(socket));
 *   return response;
 * });
 * ```
 */
export class IdlePings {
  readonly #sweepMs: number;
  readonly #watched = new Set<Watched>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** @param idleTimeoutMs the sockets' `idleTimeout` in ms (0: never; nothing is watched) */
  constructor(idleTimeoutMs: number) {
    this.#sweepMs = idleTimeoutMs / 32;
  }

  /**
   * Takes over the idle timer of a socket upgraded with this timeout.
   *
   * @param socket a socket from `Deno.upgradeWebSocket(req, { idleTimeout })`
   */
  watch(socket: WebSocket): void {
    if (this.#sweepMs <= 0) return;
    const deno = denoIdleHandler(socket);
    if (deno === null || deno === undefined) return;
    const s = socket as Watched;
    s[ENTRY] = { armed: false, heard: true };
    s[deno.key] = heard;
    this.#watched.add(s);
    if (this.#timer === undefined) {
      const timer = setInterval(() => this.#sweep(deno.handle), this.#sweepMs);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /**
   * Stops watching a socket (once it closed).
   *
   * @param socket a socket given to {@linkcode watch}
   */
  unwatch(socket: WebSocket): void {
    if (!this.#watched.delete(socket as Watched)) return;
    if (this.#watched.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #sweep(handle: (this: WebSocket) => void): void {
    for (const s of this.#watched) {
      const e = s[ENTRY];
      if (e.heard) {
        e.heard = false;
        if (e.armed) {
          e.armed = false;
          dropTimer(s);
        }
      } else if (!e.armed && s.readyState === WebSocket.OPEN) {
        e.armed = true;
        handle.call(s);
      }
    }
  }
}

/** A watched socket's `[[serverHandleIdleTimeout]]`, which Deno calls for each message and pong. */
function heard(this: Watched): void {
  const e = this[ENTRY];
  e.heard = true;
  if (e.armed) denoIdle!.handle.call(this);
  else dropTimer(this);
}

/**
 * Cancels the timer Deno's handling left on a socket the sweep watches again (after a ping:
 * the close's, which a pong cancels when Deno is in charge).
 */
function dropTimer(socket: Watched): void {
  const key = keys.get("[[idleTimeoutTimeout]]")!;
  const timer = socket[key];
  if (timer === null || timer === undefined) return;
  core()!.cancelTimer!(timer);
  socket[key] = null;
}
