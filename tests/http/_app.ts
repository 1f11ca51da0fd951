/**
 * An in-process broker and its Hono app for route tests (`app.request`, no socket), on a
 * temp data directory and an in-memory KV.
 *
 * @module
 */
import type { Hono } from "hono";
import { Broker } from "../../src/broker/broker.ts";
import type { BrokerConfig } from "../../src/broker/config.ts";
import { createApp } from "../../src/http/app.ts";

/** A broker with its app. */
export interface TestBroker extends AsyncDisposable {
  /** the broker */
  broker: Broker;
  /** its HTTP app */
  app: Hono;
  /** its data directory */
  dataDir: string;
  /**
   * Sends a JSON request (or a raw body) and parses a JSON answer.
   *
   * @param method the HTTP method
   * @param path the path and query
   * @param body an object (sent as JSON), bytes or a string (sent as is)
   * @param headers more headers
   * @returns status and parsed body (null when empty, the text when not JSON)
   */
  call(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
    // deno-lint-ignore no-explicit-any
  ): Promise<{ status: number; body: any; headers: Headers }>;
}

/**
 * Opens a broker for a test.
 *
 * @param opts KV to share, broker id, config overrides, a data directory to reuse
 * @returns the broker, closed (and its temp dir removed) on dispose
 */
export async function openTestBroker(
  opts: { kv?: Deno.Kv; id?: number; config?: Partial<BrokerConfig>; dataDir?: string } = {},
): Promise<TestBroker> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "rill-http-" });
  const ownKv = opts.kv === undefined;
  const kv = opts.kv ?? await Deno.openKv(":memory:");
  const broker = await Broker.open({
    id: opts.id ?? 1,
    dataDir,
    kv,
    advertisedUrl: `http://broker-${opts.id ?? 1}.test`,
    config: opts.config,
    log: () => {},
  });
  const app = createApp(broker);
  return {
    broker,
    app,
    dataDir,
    async call(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers: { ...headers } };
      if (body instanceof Uint8Array || typeof body === "string") {
        init.body = body as BodyInit;
      } else if (body !== undefined) {
        init.body = JSON.stringify(body);
        (init.headers as Record<string, string>)["content-type"] ??= "application/json";
      }
      const res = await app.request(path, init);
      const text = await res.text();
      let parsed: unknown = null;
      if (text !== "") {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async [Symbol.asyncDispose]() {
      await broker.close();
      if (ownKv) kv.close();
      if (ownDir) await Deno.remove(dataDir, { recursive: true });
    },
  };
}
