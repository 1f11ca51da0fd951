/**
 * The web console, served by every broker at `/ui` (and by `rill console` on its own):
 *
 * ```
 * GET /ui              the shell page (pages are addressed by the fragment: /ui#/topics/orders)
 * GET /ui/console.js   the console (console/console.js: plain DOM code, no framework), and the
 *                      modules it imports: api.js, dom.js, pages_cluster.js, pages_records.js,
 *                      pages_groups.js
 * GET /ui/console.css  its stylesheet
 * ```
 *
 * The console is a client of the public /v1 API: it sees and does what its API key may,
 * checked by the API's own ACLs, so these three files need no credentials. Every answer
 * carries a strict Content-Security-Policy (scripts and styles from this origin only, no
 * inline code, no eval, no WebAssembly, no frames) and `X-Content-Type-Options: nosniff`.
 * The files are imported as text, so `deno compile` embeds them in the binary.
 *
 * @module
 */
import { Hono } from "hono";
import shell from "./console/console.js" with { type: "text" };
import apiModule from "./console/api.js" with { type: "text" };
import domModule from "./console/dom.js" with { type: "text" };
import clusterPages from "./console/pages_cluster.js" with { type: "text" };
import recordPages from "./console/pages_records.js" with { type: "text" };
import groupPages from "./console/pages_groups.js" with { type: "text" };
import styles from "./console/console.css" with { type: "text" };

/** The console's modules, by file name. */
const MODULES: Record<string, string> = {
  "console.js": shell,
  "api.js": apiModule,
  "dom.js": domModule,
  "pages_cluster.js": clusterPages,
  "pages_records.js": recordPages,
  "pages_groups.js": groupPages,
};

/** The Content-Security-Policy of every console answer. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src *; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Options of {@linkcode consoleRoutes}. */
export interface ConsoleOptions {
  /** the API the console talks to (default: the origin that served it) */
  apiUrl?: string;
}

function escapeAttribute(value: string): string {
  return value.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The shell page.
 *
 * @param apiUrl the API base URL, or "" for the page's own origin
 * @returns the HTML
 */
export function consolePage(apiUrl = ""): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="rill-api" content="${escapeAttribute(apiUrl)}">
<title>Rill console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/console.css">
<script type="module" src="/ui/console.js"></script>
</head>
<body>
<header>
<span class="brand">RILL</span>
<nav><a href="#/cluster">Cluster</a><a href="#/topics">Topics</a><a href="#/groups">Groups</a><a href="#/security">Security</a></nav>
<form data-key autocomplete="off">
<span class="who" data-who></span>
<input name="key" type="password" placeholder="API key (keyId.secret)" aria-label="API key">
<button type="submit">Use key</button>
<button type="button" class="secondary" data-forget>Forget</button>
</form>
</header>
<main><p class="note">Loading…</p></main>
</body>
</html>
`;
}

/**
 * The console routes, to mount at the app's root.
 *
 * @param options the API URL the console talks to
 * @returns a Hono app serving `/ui`, `/ui/console.js` and `/ui/console.css`
 * @example
 * ```ts
 * app.route("/", consoleRoutes());
 * ```
 */
export function consoleRoutes(options: ConsoleOptions = {}): Hono {
  const app = new Hono();
  const page = consolePage(options.apiUrl ?? "");
  const headers = (type: string) => ({
    "content-type": type,
    "content-security-policy": CONSOLE_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
  });
  app.get("/ui", (c) => c.body(page, 200, headers("text/html; charset=utf-8")));
  app.get("/ui/", (c) => c.redirect("/ui"));
  app.get("/ui/:module{[a-z_]+\\.js}", (c) => {
    const source = MODULES[c.req.param("module")];
    if (source === undefined) return c.text("Not found", 404);
    return c.body(source, 200, headers("text/javascript; charset=utf-8"));
  });
  app.get("/ui/console.css", (c) => c.body(styles, 200, headers("text/css; charset=utf-8")));
  return app;
}
