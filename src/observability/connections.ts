/**
 * Open client connections of a listener. Deno.serve reports no connection events, so the
 * count is read at scrape time from Linux's socket tables (`/proc/net/tcp` and `tcp6`):
 * the established sockets whose local port is the listener's. Elsewhere it is unknown.
 *
 * @module
 */

const ESTABLISHED = "01";

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
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st …
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== ESTABLISHED) continue;
      if (f[1].slice(f[1].lastIndexOf(":") + 1) === hex) n++;
    }
  }
  return read ? n : null;
}
