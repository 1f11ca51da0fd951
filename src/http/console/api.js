// The console's calls to the broker's /v1 API (see console.js).

export const API = (document.querySelector('meta[name="rill-api"]')?.getAttribute("content") ||
  location.origin).replace(/\/$/, "");
export const KEY = "rill.console.apiKey";
export const REFRESH_MS = 5000;
export const PAGE_RECORDS = 50;
export const TAIL_ROWS = 200;
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @returns {Record<string, string>} */
export function authHeaders() {
  const key = sessionStorage.getItem(KEY);
  return key ? { authorization: `Bearer ${key}` } : {};
}

/**
 * Calls the API and returns its JSON answer, or throws an ApiError with Rill's code.
 *
 * @param {string} path
 * @param {{ method?: string, body?: unknown, base?: string, signal?: AbortSignal }} [init]
 * @returns {Promise<any>}
 */
export async function api(path, init = {}) {
  const headers = authHeaders();
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const base = init.base ?? API;
  let res;
  try {
    res = await fetch(base + path, {
      method: init.method ?? "GET",
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal,
    });
  } catch (e) {
    if (init.signal?.aborted) throw e;
    throw new ApiError(0, "NETWORK_ERROR", `Cannot reach ${base}: ${String(e)}`);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const err = json?.error;
    throw new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? text);
  }
  return json;
}

// ---- cluster-wide reads --------------------------------------------------------------------

/** @param {AbortSignal} signal */
export async function cluster(signal) {
  return await api("/v1/cluster", { signal });
}

/**
 * A topic's description with each partition's offsets as its leader reports them (a broker
 * knows the offsets only of the replicas it hosts).
 *
 * @param {string} name
 * @param {AbortSignal} signal
 */
export async function describeTopic(name, signal) {
  const [topic, c] = await Promise.all([
    api(`/v1/topics/${encodeURIComponent(name)}`, { signal }),
    cluster(signal),
  ]);
  const urls = new Map(
    c.brokers.filter((/** @type {any} */ b) => b.alive).map((
      /** @type {any} */ b,
    ) => [b.id, b.url]),
  );
  const leaders = new Set(topic.partitions.map((/** @type {any} */ p) => p.leader));
  /** @type {Map<number, any>} */
  const byBroker = new Map();
  await Promise.all([...leaders].map(async (id) => {
    const url = urls.get(id);
    if (!url) return;
    try {
      byBroker.set(
        id,
        url === API
          ? topic
          : await api(`/v1/topics/${encodeURIComponent(name)}`, { base: url, signal }),
      );
    } catch {
      // That broker's offsets stay unknown ("–").
    }
  }));
  for (const p of topic.partitions) {
    const fromLeader = byBroker.get(p.leader)?.partitions?.[p.partition];
    if (fromLeader && fromLeader.highWatermark !== null) {
      p.logStartOffset = fromLeader.logStartOffset;
      p.highWatermark = fromLeader.highWatermark;
      p.logEndOffset = fromLeader.logEndOffset;
    }
    p.leaderUrl = urls.get(p.leader) ?? null;
  }
  topic.brokerUrls = urls;
  return topic;
}
