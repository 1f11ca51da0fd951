// Rill's web console: a small client of the broker's public HTTP API, in plain DOM code.
//
// - Every page is drawn from the same /v1 API the CLI and the client use, so the console can
//   see and do exactly what its API key may (ACLs are checked by the API, nowhere else).
// - The API key is kept in sessionStorage and sent as an `Authorization: Bearer` header; it
//   never goes into a cookie or a URL (the live tail reads the SSE stream with fetch(), which
//   can send the header, instead of EventSource, which cannot).
// - Pages are addressed by the URL fragment (#/topics/orders), so the broker serves one shell
//   page, this script and a stylesheet, under a strict Content-Security-Policy.
// - Text from records, topics and errors is always inserted as text (textContent), never as
//   markup.
// The modules: api.js (calls), dom.js (elements), pages_cluster.js, pages_records.js,
// pages_groups.js (the pages); this one routes the fragment to a page and keeps the key.
import { api, ApiError, KEY, REFRESH_MS } from "./api.js";
import { enc, errorBox, h } from "./dom.js";
import { clusterPage, topicPage, topicsPage } from "./pages_cluster.js";
import { messagesPage, producePage, tailPage } from "./pages_records.js";
import { groupPage, groupsPage, securityPage } from "./pages_groups.js";

/** @typedef {import("./pages_cluster.js").Ctx} Ctx */

// ---- shell ---------------------------------------------------------------------------------

/** @type {[RegExp, (ctx: Ctx) => Promise<Node> | Node, boolean][]} route, page, auto-refresh */
const ROUTES = [
  [/^(cluster)?$/, clusterPage, true],
  [/^topics$/, topicsPage, true],
  [/^topics\/[^/]+$/, topicPage, true],
  [/^topics\/[^/]+\/messages$/, messagesPage, false],
  [/^topics\/[^/]+\/tail$/, tailPage, false],
  [/^topics\/[^/]+\/produce$/, producePage, false],
  [/^groups$/, groupsPage, true],
  [/^groups\/[^/]+$/, groupPage, true],
  [/^security$/, securityPage, false],
];

const main = /** @type {HTMLElement} */ (document.querySelector("main"));
const who = /** @type {HTMLElement} */ (document.querySelector("[data-who]"));
/** @type {AbortController | null} */
let current = null;
/** @type {ReturnType<typeof setTimeout> | null} */
let timer = null;

async function render() {
  current?.abort();
  if (timer !== null) clearTimeout(timer);
  const controller = new AbortController();
  current = controller;
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const route = ROUTES.find(([re]) => re.test(parts.map(enc).join("/")));
  for (const a of document.querySelectorAll("header nav a")) {
    const section = a.getAttribute("href")?.replace("#/", "") ?? "";
    a.classList.toggle("active", (parts[0] ?? "cluster") === section);
  }
  if (!route) {
    main.replaceChildren(h("h1", null, "Not found"), h("p", null, "There is no such page."));
    return;
  }
  const [, page, refresh] = route;
  try {
    const view = await page({
      parts,
      params: new URLSearchParams(query),
      signal: controller.signal,
    });
    if (controller.signal.aborted) return;
    main.replaceChildren(view);
  } catch (e) {
    if (controller.signal.aborted) return;
    main.replaceChildren(errorBox(e));
  }
  main.setAttribute("data-ready", String(Date.now()));
  if (refresh) timer = setTimeout(() => current === controller && render(), REFRESH_MS);
}

async function showWho() {
  try {
    const me = await api("/v1/auth/whoami");
    // Without --auth every request is the anonymous superuser, with no key behind it.
    who.textContent = me.keyId
      ? `${me.principal}${me.superuser ? " (superuser)" : ""}`
      : "no key needed (auth is off)";
  } catch (e) {
    who.textContent = e instanceof ApiError && e.status === 401 ? "no API key" : "";
  }
}

const keyForm = /** @type {HTMLFormElement} */ (document.querySelector("form[data-key]"));
keyForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const input = /** @type {HTMLInputElement} */ (keyForm.elements.namedItem("key"));
  if (input.value.trim()) sessionStorage.setItem(KEY, input.value.trim());
  input.value = "";
  void showWho();
  void render();
});
keyForm.querySelector("[data-forget]")?.addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  void showWho();
  void render();
});
globalThis.addEventListener("hashchange", () => void render());
void showWho();
void render();
