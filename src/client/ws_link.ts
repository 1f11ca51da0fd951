/**
 * The socket under the client's WebSocket connection (ws_connection.ts) and how it is opened:
 * a {@linkcode TcpWebSocket} in Deno (RFC 6455 over `Deno.connect` with TCP_NODELAY, the API
 * key in an `Authorization` header), the standard `WebSocket` elsewhere (the key in a second
 * subprotocol, as browsers set no headers). See ws_connection.ts's module comment for why.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import {
  encodeFrame,
  WS_AUTH_SUBPROTOCOL_PREFIX,
  WS_PATH,
  WS_SUBPROTOCOL,
} from "../protocol/ws_frames.ts";
import { TcpWebSocket, tcpWebSocketAvailable, TcpWebSocketRefused } from "./tcp_websocket.ts";

/** The socket under a connection: sends frames, reports messages and the close. */
export interface Link {
  /** sends one frame (encoded by the link, into a buffer it may reuse) */
  send(header: Record<string, unknown>, payload?: Uint8Array): void;
  /**
   * gives bytes to write one message in (the link's to reuse: send it with
   * {@linkcode Link.sendAllocated} before asking for more)
   */
  alloc(size: number): Uint8Array<ArrayBuffer>;
  /** sends a message written in bytes from {@linkcode Link.alloc} (all or a prefix) */
  sendAllocated(message: Uint8Array<ArrayBuffer>): void;
  close(): void;
}

/** Where a link's messages and its close go. */
export interface LinkEvents {
  /** a message: its own buffer with `owned`, else a view valid only during the call */
  onMessage(message: Uint8Array, owned: boolean): void;
  /** whether onMessage copies what it keeps of a message starting with `head` (see tcp_websocket.ts) */
  copies?(head: Uint8Array): boolean;
  onClose(code: number, reason: string): void;
}

/**
 * Opens the link to a broker's WebSocket endpoint (see the module comment); REQUEST_TIMED_OUT
 * when it is not open within `timeoutMs` (a broker that accepts connections and never
 * answers).
 */
export async function openLink(
  base: string,
  auth: string | undefined,
  events: LinkEvents,
  timeoutMs: number | undefined,
): Promise<Link> {
  if (timeoutMs === undefined) return await openLinkNow(base, auth, events);
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  try {
    return await openLinkNow(base, auth, events, timeout.signal);
  } catch (e) {
    if (!timeout.signal.aborted) throw e;
    throw new RillError(
      "REQUEST_TIMED_OUT",
      `The broker at ${base} did not open a WebSocket connection within ${timeoutMs} ms (requestTimeoutMs)`,
    );
  } finally {
    clearTimeout(timer);
  }
}

async function openLinkNow(
  base: string,
  auth: string | undefined,
  events: LinkEvents,
  signal?: AbortSignal,
): Promise<Link> {
  const url = base.replace(/^http/, "ws") + WS_PATH;
  if (tcpWebSocketAvailable()) {
    try {
      const ws = await TcpWebSocket.open(
        url,
        [WS_SUBPROTOCOL],
        auth === undefined ? {} : { authorization: `Bearer ${auth}` },
        events,
        signal,
      );
      return {
        send: (header, payload) =>
          ws.sendBuilt((alloc) =>
            encodeFrame(header, payload === undefined ? [] : [payload], alloc)
          ),
        alloc: ws.alloc,
        sendAllocated: (message) => ws.sendAllocated(message),
        close: () => ws.close(1000),
      };
    } catch (e) {
      if (!(e instanceof TcpWebSocketRefused)) throw e;
      throw new WsRefused(`The broker at ${base} refused a WebSocket connection: ${e.message}`);
    }
  }
  // The standard WebSocket: the key goes in a second subprotocol (browsers set no headers).
  const protocols = [WS_SUBPROTOCOL];
  if (auth !== undefined) protocols.push(WS_AUTH_SUBPROTOCOL_PREFIX + base64Url(auth));
  let socket: WebSocket;
  try {
    socket = new WebSocket(url, protocols);
  } catch (e) {
    throw new WsRefused(`Cannot open ${url}: ${e instanceof Error ? e.message : e}`);
  }
  socket.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    const failed = () => {
      cleanup();
      reject(new WsRefused(`The broker at ${base} refused a WebSocket connection`));
    };
    const opened = () => {
      cleanup();
      resolve();
    };
    const aborted = () => {
      cleanup();
      socket.close();
      reject(signal!.reason);
    };
    const cleanup = () => {
      socket.removeEventListener("open", opened);
      socket.removeEventListener("error", failed);
      socket.removeEventListener("close", failed);
      signal?.removeEventListener("abort", aborted);
    };
    socket.addEventListener("open", opened);
    socket.addEventListener("error", failed);
    socket.addEventListener("close", failed);
    signal?.addEventListener("abort", aborted);
  });
  socket.addEventListener("message", (e) => {
    if (e.data instanceof ArrayBuffer) events.onMessage(new Uint8Array(e.data), true);
  });
  socket.addEventListener("close", (e) => events.onClose(e.code, e.reason));
  return {
    send: (header, payload) =>
      socket.send(encodeFrame(header, payload === undefined ? [] : [payload])),
    alloc: newBytes,
    sendAllocated: (message) => socket.send(message),
    close: () => socket.close(1000),
  };
}

const newBytes = (size: number) => new Uint8Array(size);

/** The WebSocket connection could not be opened (use HTTP instead). */
export class WsRefused extends Error {
  /** @param message why */
  constructor(message: string) {
    super(message);
    this.name = "WsRefused";
  }
}

function base64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
