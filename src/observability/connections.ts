/**
 * Open client connections of a listener. Deno.serve reports no connection events, so the
 * count is read from Linux's socket tables (`/proc/net/tcp` and `tcp6`): the established
 * sockets whose local port is the listener's. Elsewhere it is unknown.
 *
 * Those tables list every socket of the network namespace: on a host with thousands of
 * them, producing and reading them costs the kernel and the broker about 10 ms. So
 * {@linkcode connectionCounter} reads them at most every {@linkcode CONNECTIONS_MAX_AGE_MS}.
 *
 * @module
 */

/** How old a connection count may be. */
export const CONNECTIONS_MAX_AGE_MS = 10_000;

/**
 * Counts the established TCP connections to a local port.
 *
 * @param port the listening port
 * @returns the count, or null where `/proc/net/tcp` cannot be read (not Linux)
 * @example
 * ```ts
 * await establishedConnections(8092); // 3
 * ```
 */
export async function establishedConnections(port: number): Promise<number | null> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  // "  12: 0100007F:1F9C 0100007F:D2A4 01 …": local address:port, remote, state (01: established)
  const established = new RegExp(`^ *\\d+: [0-9A-F]+:${hex} [0-9A-F]+:[0-9A-F]+ 01 `, "gm");
  let n = 0;
  let read = false;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = new TextDecoder().decode(await Deno.readFile(file));
    } catch {
      continue;
    }
    read = true;
    n += text.match(established)?.length ?? 0;
  }
  return read ? n : null;
}

/**
 * A connection count read at most every {@linkcode CONNECTIONS_MAX_AGE_MS}.
 *
 * @param port the listening port
 * @param maxAgeMs how old the count may be
 * @returns a function giving the count (null where unknown)
 * @example
 * ```ts
 * const connections = connectionCounter(8092);
 * await connections(); // 3, read again 10 s later at the earliest
 * ```
 */
export function connectionCounter(
  port: number,
  maxAgeMs: number = CONNECTIONS_MAX_AGE_MS,
): () => Promise<number | null> {
  let at = -Infinity;
  let count: Promise<number | null> = Promise.resolve(null);
  return () => {
    const now = performance.now();
    if (now - at >= maxAgeMs) {
      at = now;
      count = establishedConnections(port);
    }
    return count;
  };
}
