/**
 * The client and the protocol layer never import server code (ARCHITECTURE.md's layers):
 * reads every import specifier of mod.ts, src/client/ and src/protocol/ and resolves it. Their
 * packages are pinned npm: specifiers (the client travels without the import map).
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const SERVER = ["src/broker/", "src/storage/", "src/coordination/", "src/http/", "src/cli/"];
const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(new URL(dir, ROOT))) {
    if (e.isDirectory) out.push(...await filesUnder(`${dir}${e.name}/`));
    else if (e.name.endsWith(".ts")) out.push(`${dir}${e.name}`);
  }
  return out;
}

/**
 * The import specifiers of a source file.
 *
 * @param source the file's text
 * @returns every static, re-export and dynamic import specifier
 */
export function importSpecifiers(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(IMPORT)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

Deno.test("importSpecifiers finds static, type, re-export and dynamic imports", () => {
  const src = `import { a } from "./a.ts";\nimport type { B } from '../b.ts';\n` +
    `export * from "./c.ts";\nconst d = await import("./d.ts");\nimport "./e.ts";\n` +
    `export {\n  f,\n} from "./f.ts";`;
  assert.deepEqual(importSpecifiers(src), [
    "./a.ts",
    "../b.ts",
    "./c.ts",
    "./d.ts",
    "./e.ts",
    "./f.ts",
  ]);
});

Deno.test("mod.ts, src/client and src/protocol import no server code", async () => {
  const files = [
    "mod.ts",
    ...await filesUnder("src/client/"),
    ...await filesUnder("src/protocol/"),
  ];
  assert.ok(files.length > 5);
  const violations: string[] = [];
  for (const file of files) {
    const url = new URL(file, ROOT);
    const source = await Deno.readTextFile(url);
    for (const spec of importSpecifiers(source)) {
      if (!spec.startsWith(".") && !spec.startsWith("/")) {
        // Packages: full, pinned npm: specifiers only, so that the client resolves without
        // this repository's import map (a bare name does not) and runs in browsers (node:
        // built-ins do not).
        if (!/^npm:(@[^/@]+\/)?[^/@]+@\d+\.\d+\.\d+(\/|$)/.test(spec)) {
          violations.push(
            `${file} imports "${spec}": the client may import only pinned npm: specifiers ` +
              `(npm:name@1.2.3), since it must load without the import map and in browsers`,
          );
        }
        continue;
      }
      const target = new URL(spec, url).pathname.slice(ROOT.pathname.length);
      if (SERVER.some((s) => target.startsWith(s)) || target === "cli.ts") {
        violations.push(`${file} imports ${target}`);
      }
    }
  }
  assert.deepEqual(violations, []);
});

Deno.test("src/client uses no Deno-only API, so it runs wherever fetch exists", async () => {
  for (const file of await filesUnder("src/client/")) {
    const source = await Deno.readTextFile(new URL(file, ROOT));
    const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    assert.doesNotMatch(code, /\bDeno\./, `${file} uses Deno.*`);
  }
});

Deno.test("src/ws is a skin over the broker: of src/http it imports only the shared security state", async () => {
  const allowed = new Set(["src/http/auth.ts", "src/http/security.ts", "src/http/quotas.ts"]);
  const violations: string[] = [];
  for (const file of await filesUnder("src/ws/")) {
    const url = new URL(file, ROOT);
    for (const spec of importSpecifiers(await Deno.readTextFile(url))) {
      if (!spec.startsWith(".")) continue;
      const target = new URL(spec, url).pathname.slice(ROOT.pathname.length);
      if (target.startsWith("src/http/") && !allowed.has(target)) {
        violations.push(`${file} imports ${target}`);
      }
      if (target.startsWith("src/cli/") || target === "cli.ts") {
        violations.push(`${file} imports ${target}`);
      }
    }
  }
  for (const file of await filesUnder("src/http/")) {
    const url = new URL(file, ROOT);
    for (const spec of importSpecifiers(await Deno.readTextFile(url))) {
      if (!spec.startsWith(".")) continue;
      const target = new URL(spec, url).pathname.slice(ROOT.pathname.length);
      if (target.startsWith("src/ws/")) violations.push(`${file} imports ${target}`);
    }
  }
  assert.deepEqual(violations, []);
});
