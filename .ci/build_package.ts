/**
 * `deno task package [--pack] [--out=DIR]`: builds the client (`mod.ts` and what it imports) as
 * an npm package in `dist/npm/`, and with `--pack` also its tarball (`dist/<name>-<version>.tgz`).
 *
 * What the package holds:
 * - `esm/`: ES modules compiled by TypeScript (tsc), with `.d.ts` declarations that
 *   type-check under `tsc --strict`;
 * - `cjs/rill.cjs`: one CommonJS bundle, for `require()` (esbuild);
 * - `browser/rill.js`: one self-contained ES module for a `<script type="module">`, its npm
 *   dependencies included (esbuild);
 * - `package.json` with `exports` for all three, and the runtime dependencies only.
 *
 * How: the module graph of `mod.ts` is read with `deno info --json`; each local module is
 * copied into a staging folder with its `npm:name@version/path` specifiers rewritten to
 * `name/path` (and `name@version` recorded as a dependency); tsc and esbuild, pinned below,
 * are installed there from npm and run. The name and version come from deno.json (the same
 * fields JSR reads), so the npm package and a JSR publish agree.
 *
 * @module
 */

const TYPESCRIPT = "typescript@5.9.3";
const ESBUILD = "esbuild@0.28.2";

const repo = new URL("../", import.meta.url).pathname;

interface DenoJson {
  name: string;
  version: string;
  description?: string;
  license?: string;
}

interface ModuleInfo {
  specifier: string;
  dependencies?: { specifier: string }[];
}

async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr);
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${out.code}):\n${text}${err}`);
  }
  return text;
}

/** `npm:name@version/sub/path` → { name, version, path: "name/sub/path" }. */
export function parseNpmSpecifier(spec: string): { name: string; version: string; path: string } {
  const m = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)@([^/]+)(\/.*)?$/.exec(spec);
  if (!m) throw new Error(`Cannot package an npm specifier without a pinned version: ${spec}`);
  return { name: m[1], version: m[2], path: m[1] + (m[3] ?? "") };
}

/**
 * Copies mod.ts's local module graph into `stage`, rewriting npm: specifiers.
 *
 * @returns the npm dependencies with their pinned versions
 */
async function stageSources(stage: string): Promise<Record<string, string>> {
  const info = JSON.parse(
    await run(Deno.execPath(), ["info", "--json", "mod.ts"], repo),
  ) as { modules: ModuleInfo[] };
  const deps: Record<string, string> = {};
  const root = new URL(`file://${repo}`).href;
  for (const mod of info.modules) {
    if (!mod.specifier.startsWith(root)) continue;
    const rel = mod.specifier.slice(root.length);
    let source = await Deno.readTextFile(`${repo}${rel}`);
    for (const dep of mod.dependencies ?? []) {
      if (dep.specifier.startsWith("npm:")) {
        const { name, version, path } = parseNpmSpecifier(dep.specifier);
        if (deps[name] !== undefined && deps[name] !== version) {
          throw new Error(`${name} is pinned at both ${deps[name]} and ${version}`);
        }
        deps[name] = version;
        source = source.replaceAll(`"${dep.specifier}"`, JSON.stringify(path));
      } else if (!dep.specifier.startsWith(".")) {
        throw new Error(
          `${rel} imports "${dep.specifier}", which only the repository's import map resolves; ` +
            `use a relative path or a full npm: specifier`,
        );
      }
    }
    const target = `${stage}/src/${rel}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(target, source);
  }
  return deps;
}

/**
 * Builds the package.
 *
 * @param distDir where `npm/` (the package folder) and the tarball go
 * @param pack whether to make the tarball too
 * @returns the package folder, and the tarball's path when packed
 */
export async function buildPackage(
  distDir: string,
  pack: boolean,
): Promise<{ dir: string; tarball: string | null }> {
  const outDir = `${distDir}/npm`;
  const meta = JSON.parse(await Deno.readTextFile(`${repo}deno.json`)) as DenoJson;
  const stage = await Deno.makeTempDir({ prefix: "rill-package-" });
  try {
    const deps = await stageSources(stage);
    await Deno.writeTextFile(
      `${stage}/package.json`,
      JSON.stringify({ name: "rill-package-stage", private: true, type: "module" }),
    );
    await run("npm", [
      "install",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      TYPESCRIPT,
      ESBUILD,
      ...Object.entries(deps).map(([n, v]) => `${n}@${v}`),
    ], stage);
    await Deno.writeTextFile(
      `${stage}/tsconfig.json`,
      JSON.stringify(
        {
          compilerOptions: {
            target: "ES2022",
            module: "ESNext",
            moduleResolution: "Bundler",
            lib: ["ES2022", "DOM", "DOM.Iterable"],
            strict: true,
            noImplicitReturns: true,
            noFallthroughCasesInSwitch: true,
            noImplicitOverride: true,
            declaration: true,
            rewriteRelativeImportExtensions: true,
            allowImportingTsExtensions: false,
            esModuleInterop: true,
            skipLibCheck: true,
            rootDir: "src",
            outDir: "esm",
          },
          include: ["src/**/*.ts"],
        },
        null,
        2,
      ),
    );
    await run("npx", ["--no-install", "tsc", "-p", "tsconfig.json"], stage);
    const external = Object.keys(deps).flatMap((n) => ["--external:" + n, `--external:${n}/*`]);
    await run("npx", [
      "--no-install",
      "esbuild",
      "esm/mod.js",
      "--bundle",
      "--format=cjs",
      "--platform=neutral",
      "--target=es2022",
      "--outfile=cjs/rill.cjs",
      ...external,
    ], stage);
    await run("npx", [
      "--no-install",
      "esbuild",
      "esm/mod.js",
      "--bundle",
      "--format=esm",
      "--platform=browser",
      "--target=es2022",
      "--outfile=browser/rill.js",
    ], stage);

    await Deno.remove(outDir, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    await Deno.mkdir(outDir, { recursive: true });
    for (const dir of ["esm", "cjs", "browser"]) {
      await run("cp", ["-r", `${stage}/${dir}`, `${outDir}/${dir}`], repo);
    }
    await Deno.copyFile(`${repo}README.md`, `${outDir}/README.md`);
    const pkg = {
      name: meta.name,
      version: meta.version,
      description: meta.description,
      license: meta.license,
      type: "module",
      main: "./cjs/rill.cjs",
      module: "./esm/mod.js",
      types: "./esm/mod.d.ts",
      browser: "./browser/rill.js",
      exports: {
        ".": {
          types: "./esm/mod.d.ts",
          import: "./esm/mod.js",
          require: "./cjs/rill.cjs",
        },
        "./browser": "./browser/rill.js",
      },
      files: ["esm", "cjs", "browser", "README.md"],
      sideEffects: false,
      engines: { node: ">=20" },
      dependencies: deps,
    };
    await Deno.writeTextFile(`${outDir}/package.json`, JSON.stringify(pkg, null, 2) + "\n");
    if (!pack) return { dir: outDir, tarball: null };
    const name =
      (await run("npm", ["pack", "--pack-destination", distDir, "--loglevel=error"], outDir))
        .trim().split("\n").pop()!;
    return { dir: outDir, tarball: `${distDir}/${name}` };
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

if (import.meta.main) {
  const out = Deno.args.find((a) => a.startsWith("--out="))?.slice("--out=".length);
  const built = await buildPackage(out ?? `${repo}dist`, Deno.args.includes("--pack"));
  console.log(`built the package in ${built.dir}`);
  if (built.tarball) console.log(built.tarball);
}
