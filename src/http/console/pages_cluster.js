// The console's cluster, topics and topic pages (see console.js).
import { api, ApiError, cluster, describeTopic, REFRESH_MS } from "./api.js";
import { ago, enc, errorBox, fmt, h, link, pill, table } from "./dom.js";

/** @typedef {{ parts: string[], params: URLSearchParams, signal: AbortSignal }} Ctx */

/** @param {Ctx} ctx */
export async function clusterPage({ signal }) {
  const started = performance.now();
  let c;
  try {
    c = await cluster(signal);
  } catch (e) {
    if (e instanceof ApiError && e.status >= 500) {
      return h(
        "div",
        null,
        h("h1", null, "Cluster"),
        pill("coordination (Deno KV) unavailable", "bad"),
        errorBox(e),
      );
    }
    throw e;
  }
  const kvMs = performance.now() - started;
  const health = await Promise.all(
    c.brokers.map(async (/** @type {any} */ b) => {
      try {
        const res = await fetch(`${b.url}/healthz`, { signal });
        return res.ok ? (await res.json()).status : `HTTP ${res.status}`;
      } catch {
        return "unreachable";
      }
    }),
  );
  const alive = c.brokers.filter((/** @type {any} */ b) => b.alive).length;
  return h(
    "div",
    null,
    h("h1", null, "Cluster"),
    h(
      "div",
      { class: "card" },
      h("div", null, "Cluster id: ", h("code", null, c.clusterId)),
      h(
        "div",
        null,
        "Controller: ",
        c.controllerId === null ? pill("none", "bad") : `broker ${c.controllerId}`,
      ),
      h("div", null, `Brokers: ${alive} of ${c.brokers.length} alive`),
      h(
        "div",
        null,
        "Coordination (Deno KV): ",
        pill(`answered in ${kvMs.toFixed(0)} ms`, kvMs < 500 ? "good" : "warn"),
      ),
    ),
    h("h2", null, "Brokers"),
    table(
      ["Id", "URL", "Role", "Liveness", "Health", "Last heartbeat", "Started"],
      c.brokers.map((/** @type {any} */ b, /** @type {number} */ i) => [
        String(b.id),
        b.url,
        b.role + (b.id === c.controllerId ? " (controller)" : ""),
        b.alive ? pill("alive", "good") : pill("dead", "bad"),
        health[i] === "ok" ? pill("ok", "good") : pill(health[i], "bad"),
        b.heartbeatMs ? ago(b.heartbeatMs) : "–",
        b.startedMs ? new Date(b.startedMs).toLocaleString() : "–",
      ]),
    ),
  );
}

/** Log end samples per topic, for the rate column: name → { at, total }. */
export const topicSamples = new Map();

/** @param {Ctx} ctx */
export async function topicsPage({ signal }) {
  const { topics } = await api("/v1/topics", { signal });
  const described = await Promise.all(
    topics.map((/** @type {any} */ t) => describeTopic(t.name, signal).catch(() => null)),
  );
  const now = Date.now();
  const rows = topics.map((/** @type {any} */ t, /** @type {number} */ i) => {
    const d = described[i];
    let records = null, end = null, under = 0;
    if (d) {
      records = 0;
      end = 0;
      for (const p of d.partitions) {
        if (p.highWatermark !== null) {
          records += p.highWatermark - p.logStartOffset;
          end += p.highWatermark;
        }
        if (p.isr.length < p.replicas.length) under++;
      }
    }
    let rate = null;
    const last = topicSamples.get(t.name);
    if (last && end !== null && now > last.at) rate = ((end - last.total) / (now - last.at)) * 1000;
    if (end !== null) topicSamples.set(t.name, { at: now, total: end });
    return [
      link(`#/topics/${enc(t.name)}`, t.name),
      String(t.partitions),
      String(t.replicationFactor),
      fmt(records),
      rate === null ? "…" : `${fmt(Math.max(0, rate))}/s`,
      d?.configs?.["retention.ms"] ?? "default",
      under > 0 ? pill(`${under} under-replicated`, "warn") : pill("in sync", "good"),
    ];
  });
  return h(
    "div",
    null,
    h("h1", null, "Topics"),
    table(
      ["Topic", "Partitions#", "Replication#", "Records#", "Rate#", "retention.ms", "Replicas"],
      rows,
    ),
    h(
      "p",
      { class: "note" },
      `Rates come from the high watermarks of two views, refreshed every ${REFRESH_MS / 1000} s.`,
    ),
  );
}

/** @param {Ctx} ctx */
export async function topicPage({ parts, signal }) {
  const name = parts[1];
  const d = await describeTopic(name, signal);
  const base = `#/topics/${enc(name)}`;
  return h(
    "div",
    null,
    h("h1", null, `Topic ${name}`),
    h(
      "div",
      { class: "links" },
      link(`${base}/messages`, "Browse messages"),
      link(`${base}/tail`, "Live tail"),
      link(`${base}/produce`, "Produce a record"),
    ),
    h("h2", null, "Partitions"),
    table(
      [
        "Partition#",
        "Leader",
        "Replicas",
        "ISR",
        "Log start#",
        "High watermark#",
        "Log end#",
        "State",
      ],
      d.partitions.map((/** @type {any} */ p) => [
        String(p.partition),
        p.leader === null || p.leader < 0 ? pill("none", "bad") : String(p.leader),
        p.replicas.join(", "),
        p.isr.join(", "),
        fmt(p.logStartOffset),
        fmt(p.highWatermark),
        fmt(p.logEndOffset),
        p.isr.length < p.replicas.length
          ? pill("under-replicated", "warn")
          : pill("in sync", "good"),
      ]),
      (r) => (r[7].textContent === "under-replicated" ? "warn" : undefined),
    ),
    h("h2", null, "Configs"),
    table(
      ["Name", "Value"],
      Object.entries(d.configs ?? {}).map(([k, v]) => [k, String(v)]),
    ),
  );
}
