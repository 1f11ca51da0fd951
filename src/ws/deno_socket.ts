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
