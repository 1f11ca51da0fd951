/**
 * Every relative link in README.md and docs/*.md resolves: the file (or folder) exists in the
 * repository, and a `#fragment` names a heading of the target (GitHub's heading anchors). A
 * link out of the repository (`../shared/…`) fails, since a clone does not have it.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const LINK = /(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g;

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[`*_~]/g, "")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/[^\p{L}\p{N}\s-]/gu, "")
    .replace(/\s/g, "-");
}

function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const m = /^#{1,6}\s+(.*)$/.exec(line);
    if (!m) continue;
    const base = anchorOf(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The links of a markdown text, outside code blocks and code spans. */
function links(markdown: string): string[] {
  const out: string[] = [];
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    for (const m of line.replace(/`[^`]*`/g, "").matchAll(LINK)) out.push(m[1]);
  }
  return out;
}

async function docFiles(): Promise<string[]> {
  const files = ["README.md"];
  for await (const e of Deno.readDir(new URL("docs/", ROOT))) {
    if (e.isFile && e.name.endsWith(".md")) files.push(`docs/${e.name}`);
  }
  return files.sort();
}

Deno.test("anchorOf makes GitHub's heading anchors", () => {
  assert.equal(anchorOf("The client (`mod.ts`)"), "the-client-modts");
  assert.equal(anchorOf("Additions to the contract"), "additions-to-the-contract");
  assert.equal(anchorOf("A cluster"), "a-cluster");
});

Deno.test("every relative link in README.md and docs/ resolves", async () => {
  const files = await docFiles();
  assert.ok(files.length >= 5, `docs/ holds the reference: ${files.join(", ")}`);
  const broken: string[] = [];
  let checked = 0;
  for (const file of files) {
    const url = new URL(file, ROOT);
    const text = await Deno.readTextFile(url);
    for (const link of links(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // http:, https:, mailto:
      checked++;
      const [path, fragment] = link.split("#", 2) as [string, string | undefined];
      const target = path === "" ? url : new URL(path, url);
      if (!target.href.startsWith(ROOT.href)) {
        broken.push(`${file}: ${link} points outside the repository`);
        continue;
      }
      let body: string;
      try {
        const info = await Deno.stat(target);
        if (info.isDirectory) {
          if (fragment) broken.push(`${file}: ${link} has a fragment on a folder`);
          continue;
        }
        body = await Deno.readTextFile(target);
      } catch {
        broken.push(`${file}: ${link} does not exist`);
        continue;
      }
      if (fragment && target.pathname.endsWith(".md") && !anchors(body).has(fragment)) {
        broken.push(`${file}: ${link} names no heading of ${path || file}`);
      }
    }
  }
  assert.ok(checked > 10, `found only ${checked} relative links`);
  assert.deepEqual(broken, []);
});
