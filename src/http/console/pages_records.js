// The console's record pages: message browser, live tail, produce (see console.js).
import { API, api, ApiError, authHeaders, describeTopic, PAGE_RECORDS, TAIL_ROWS } from "./api.js";
import { enc, errorBox, fmt, h, leaderBase, link, showBytes, showHeaders, table } from "./dom.js";

/** @typedef {import("./pages_cluster.js").Ctx} Ctx */

/** @param {Ctx} ctx */
export async function messagesPage({ parts, params, signal }) {
  const name = parts[1];
  const d = await describeTopic(name, signal);
  const partition = Number(params.get("partition") ?? "0");
  const format = params.get("format") ?? "auto";
  const p = d.partitions[partition];
  if (!p) {
    throw new ApiError(
      404,
      "UNKNOWN_TOPIC_OR_PARTITION",
      `Topic "${name}" has no partition ${partition}`,
    );
  }
  const base = leaderBase(d, partition);
  let offset;
  const at = params.get("at");
  if (params.has("offset") && params.get("offset") !== "") {
    offset = Number(params.get("offset"));
  } else if (at) {
    const ts = Date.parse(at);
    if (Number.isNaN(ts)) {
      throw new ApiError(400, "INVALID_REQUEST", `"${at}" is not a date and time`);
    }
    offset = (await api(`/v1/topics/${enc(name)}/partitions/${partition}/offsets?at=${ts}`, {
      base,
      signal,
    })).offset;
  } else {
    offset = Math.max(p.logStartOffset ?? 0, (p.highWatermark ?? 0) - PAGE_RECORDS);
  }
  const page = await api(
    `/v1/topics/${
      enc(name)
    }/partitions/${partition}/records?offset=${offset}&maxBytes=262144&encoding=base64`,
    { base, signal },
  );
  const records = page.records.filter((/** @type {any} */ r) => r.offset >= offset).slice(
    0,
    PAGE_RECORDS,
  );
  const here = (/** @type {Record<string, string | number>} */ q) =>
    `#/topics/${enc(name)}/messages?` +
    new URLSearchParams({ partition: String(partition), format, ...q });
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: (/** @type {Event} */ e) => {
        e.preventDefault();
        const f = new FormData(/** @type {HTMLFormElement} */ (e.target));
        /** @type {Record<string, string>} */
        const q = { partition: String(f.get("partition")), format: String(f.get("format")) };
        if (f.get("offset")) q.offset = String(f.get("offset"));
        else if (f.get("at")) q.at = String(f.get("at"));
        location.hash = `#/topics/${enc(name)}/messages?` + new URLSearchParams(q);
      },
    },
    h(
      "label",
      null,
      "Partition",
      h(
        "select",
        { name: "partition" },
        d.partitions.map((/** @type {any} */ q) =>
          h(
            "option",
            { value: q.partition, selected: q.partition === partition },
            String(q.partition),
          )
        ),
      ),
    ),
    h(
      "label",
      null,
      "From offset",
      h("input", { name: "offset", type: "number", min: 0, value: params.get("offset") ?? "" }),
    ),
    h(
      "label",
      null,
      "or from time",
      h("input", { name: "at", type: "datetime-local", step: 1, value: at ?? "" }),
    ),
    h(
      "label",
      null,
      "Show as",
      h(
        "select",
        { name: "format" },
        ["auto", "json", "text", "hex"].map((f) =>
          h("option", { value: f, selected: f === format }, f)
        ),
      ),
    ),
    h("button", { type: "submit" }, "Show"),
  );
  const first = records[0]?.offset ?? offset;
  const nav = h(
    "div",
    { class: "links" },
    first > (p.logStartOffset ?? 0)
      ? link(here({ offset: Math.max(p.logStartOffset ?? 0, first - PAGE_RECORDS) }), "← Older")
      : h("span", { class: "note" }, "← Older"),
    records.length > 0 && page.nextOffset < page.highWatermark
      ? link(here({ offset: records[records.length - 1].offset + 1 }), "Newer →")
      : h("span", { class: "note" }, "Newer →"),
    h(
      "span",
      { class: "note" },
      `partition ${partition}: log start ${fmt(page.logStartOffset)}, high watermark ${
        fmt(page.highWatermark)
      }`,
    ),
  );
  return h(
    "div",
    null,
    h("h1", null, `Messages of ${name}`),
    h("div", { class: "links" }, link(`#/topics/${enc(name)}`, `← Topic ${name}`)),
    form,
    nav,
    table(
      ["Offset#", "Timestamp", "Key", "Value", "Headers"],
      records.map((/** @type {any} */ r) => [
        String(r.offset),
        new Date(r.timestamp).toISOString(),
        showBytes(r.key, format),
        showBytes(r.value, format),
        showHeaders(r.headers, format),
      ]),
    ),
  );
}

/** @param {Ctx} ctx */
export async function tailPage({ parts, params, signal }) {
  const name = parts[1];
  const d = await describeTopic(name, signal);
  const partition = Number(params.get("partition") ?? "0");
  const p = d.partitions[partition];
  if (!p) {
    throw new ApiError(
      404,
      "UNKNOWN_TOPIC_OR_PARTITION",
      `Topic "${name}" has no partition ${partition}`,
    );
  }
  const base = leaderBase(d, partition);
  const status = h("span", { class: "note", "data-tail-status": "connecting" }, "connecting…");
  const body = h("tbody");
  const view = h(
    "div",
    null,
    h("h1", null, `Live tail of ${name}`),
    h("div", { class: "links" }, link(`#/topics/${enc(name)}`, `← Topic ${name}`)),
    h(
      "form",
      { class: "inline" },
      h(
        "label",
        null,
        "Partition",
        h(
          "select",
          {
            name: "partition",
            onchange: (/** @type {Event} */ e) => {
              location.hash = `#/topics/${enc(name)}/tail?partition=${
                /** @type {HTMLSelectElement} */ (e.target).value
              }`;
            },
          },
          d.partitions.map((/** @type {any} */ q) =>
            h(
              "option",
              { value: q.partition, selected: q.partition === partition },
              String(q.partition),
            )
          ),
        ),
      ),
      status,
    ),
    h(
      "table",
      null,
      h(
        "thead",
        null,
        h("tr", null, ["Offset", "Timestamp", "Key", "Value"].map((c) => h("th", null, c))),
      ),
      body,
    ),
  );
  // The stream: the SSE form of the fetch route, read with fetch() so the key goes in a header.
  (async () => {
    const url = `${base}/v1/topics/${enc(name)}/partitions/${partition}/records?offset=${
      p.highWatermark ?? 0
    }&encoding=base64`;
    const res = await fetch(url, {
      headers: { ...authHeaders(), accept: "text/event-stream" },
      signal,
    });
    if (!res.ok || !res.body) {
      let message = `HTTP ${res.status}`;
      try {
        message = (await res.json()).error.message;
      } catch {
        // keep the status
      }
      status.textContent = `stopped: ${message}`;
      status.setAttribute("data-tail-status", "error");
      return;
    }
    status.textContent = `live from offset ${p.highWatermark ?? 0}`;
    status.setAttribute("data-tail-status", "live");
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) =>
          l.slice(5).trimStart()
        ).join("\n");
        if (!data || /^event:\s*error/m.test(event)) continue;
        const r = JSON.parse(data);
        body.prepend(
          h(
            "tr",
            null,
            h("td", null, String(r.offset)),
            h("td", null, new Date(r.timestamp).toISOString()),
            h("td", null, showBytes(r.key, "auto")),
            h("td", null, showBytes(r.value, "auto")),
          ),
        );
        while (body.children.length > TAIL_ROWS) body.lastElementChild?.remove();
      }
    }
    status.textContent = "stream ended";
  })().catch((e) => {
    if (!signal.aborted) status.textContent = `stopped: ${String(e)}`;
  });
  return view;
}

/** @param {Ctx} ctx */
export function producePage({ parts }) {
  const name = parts[1];
  const result = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: async (/** @type {Event} */ e) => {
        e.preventDefault();
        const f = new FormData(/** @type {HTMLFormElement} */ (e.target));
        /** @type {Record<string, unknown>} */
        const record = { value: String(f.get("value") ?? "") };
        if (f.get("key")) record.key = String(f.get("key"));
        if (f.get("partition") !== "") record.partition = Number(f.get("partition"));
        /** @type {Record<string, string>} */
        const headers = {};
        for (const line of String(f.get("headers") ?? "").split("\n")) {
          const at = line.indexOf("=");
          if (at > 0) headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
        }
        if (Object.keys(headers).length > 0) record.headers = headers;
        try {
          const d = await describeTopic(name, new AbortController().signal);
          const target = typeof record.partition === "number"
            ? leaderBase(d, record.partition)
            : API;
          const { offsets } = await api(`/v1/topics/${enc(name)}/records`, {
            method: "POST",
            body: { records: [record] },
            base: target,
          });
          result.replaceChildren(
            h(
              "div",
              { class: "card", role: "status" },
              `Stored in partition ${offsets[0].partition} at offset ${offsets[0].offset}.`,
            ),
          );
        } catch (err) {
          result.replaceChildren(errorBox(err));
        }
      },
    },
    h("label", null, "Key (optional)", h("input", { name: "key" })),
    h(
      "label",
      null,
      "Partition (optional)",
      h("input", { name: "partition", type: "number", min: 0 }),
    ),
    h("label", null, "Value", h("textarea", { name: "value", required: true })),
    h("label", null, "Headers (name=value, one a line)", h("textarea", { name: "headers" })),
    h("button", { type: "submit" }, "Produce"),
  );
  return h(
    "div",
    null,
    h("h1", null, `Produce to ${name}`),
    h("div", { class: "links" }, link(`#/topics/${enc(name)}`, `← Topic ${name}`)),
    form,
    result,
  );
}
