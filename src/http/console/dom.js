// DOM helpers of the console: elements, tables, numbers, errors, record bytes (see console.js).
import { API, ApiError } from "./api.js";

/**
 * Makes an element. Attributes named on* are listeners; children are nodes or text.
 *
 * @param {string} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/**
 * A table with a header row.
 *
 * @param {string[]} head column names; a name ending in "#" is numeric (right-aligned)
 * @param {any[][]} rows cells
 * @param {(row: any[], i: number) => string | undefined} [rowClass]
 */
export function table(head, rows, rowClass) {
  const num = head.map((c) => c.endsWith("#"));
  return h(
    "table",
    null,
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        head.map((c, i) => h("th", { class: num[i] ? "num" : undefined }, c.replace(/#$/, ""))),
      ),
    ),
    h(
      "tbody",
      null,
      rows.length === 0
        ? h("tr", null, h("td", { colspan: head.length, class: "note" }, "Nothing here yet."))
        : rows.map((r, ri) =>
          h(
            "tr",
            { class: rowClass?.(r, ri) },
            r.map((cell, i) => h("td", { class: num[i] ? "num" : undefined }, cell)),
          )
        ),
    ),
  );
}

/** @param {string} text @param {"good"|"bad"|"warn"|""} kind */
export const pill = (text, kind = "") => h("span", { class: `pill ${kind}` }, text);
/** @param {string} href @param {string} text */
export const link = (href, text) => h("a", { href }, text);
export const enc = encodeURIComponent;

/** @param {number | null | undefined} n */
export function fmt(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return n.toLocaleString("en-US", { maximumFractionDigits: 1 });
}

/** @param {number} ms */
export function ago(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** @param {unknown} e */
export function errorBox(e) {
  if (e instanceof ApiError) {
    const hint = e.status === 401
      ? " Paste an API key in the box at the top right."
      : e.status === 403
      ? " The API key in use is not allowed to do this."
      : "";
    return h(
      "div",
      { class: "error", role: "alert" },
      h("strong", null, e.code),
      ": ",
      e.message,
      hint,
    );
  }
  return h("div", { class: "error", role: "alert" }, String(e));
}

/**
 * Decodes a fetched key or value (the route is asked for base64) for display.
 *
 * @param {string | null} b64
 * @param {string} format "auto" | "json" | "text" | "hex"
 */
export function showBytes(b64, format) {
  if (b64 === null || b64 === undefined) return h("span", { class: "note" }, "null");
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  if (format === "hex") {
    return h(
      "pre",
      { class: "value" },
      [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" "),
    );
  }
  let text = null;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    text = null;
  }
  if (text === null) {
    // Binary: hex, whatever was asked (text would show replacement characters).
    return h(
      "pre",
      { class: "value", title: "not UTF-8: shown as hex" },
      [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" "),
    );
  }
  if (format === "json" || format === "auto") {
    try {
      return h("pre", { class: "value" }, JSON.stringify(JSON.parse(text), null, 2));
    } catch {
      // Not JSON: shown as text.
    }
  }
  return h("pre", { class: "value" }, text);
}

/** @param {Record<string, string | null>} headers @param {string} format */
export function showHeaders(headers, format) {
  const names = Object.keys(headers ?? {});
  if (names.length === 0) return "";
  return h(
    "div",
    null,
    names.map((n) => h("div", null, h("code", null, n), " = ", showBytes(headers[n], format))),
  );
}

/**
 * Where to read a partition: its leader (a broker answers consumers' reads only for the
 * partitions it leads).
 *
 * @param {any} d the merged description
 * @param {number} partition
 */
export function leaderBase(d, partition) {
  return d.partitions[partition]?.leaderUrl ?? API;
}
