/**
 * The client travels: `mod.ts` imported from outside the repository, the examples run from
 * elsewhere, and the npm package (built by `deno task package`) installed from its tarball
 * into scratch Node 20 and Deno projects and into a strict-CSP page in Chromium — each
 * producing to and consuming from a real broker process.
 *
 * @module
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startBroker } from "../_helpers/broker_process.ts";
import { buildPackage } from "../../.ci/build_package.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const TRAVEL = new URL("./travel/", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";

async function sh(
  cmd: string,
  args: string[],
  cwd: string,
): Promise<{ stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `${cmd} ${args.join(" ")} failed:\n${stdout}\n${stderr}`);
  return { stdout, stderr };
}

/** Copies a travel script into `dir`, importing the client from `specifier`. */
async function place(name: string, dir: string, specifier: string): Promise<string> {
  const text = await Deno.readTextFile(`${TRAVEL}${name}`);
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, text.replace('"../../../mod.ts"', JSON.stringify(specifier)));
  return path;
}

/** What smoke.mjs prints after a correct round trip. */
function checkRoundTrip(stdout: string): void {
  const result = JSON.parse(stdout.trim().split("\n").pop()!);
  assert.equal(result.sent, 6);
  assert.deepEqual(
    result.got.map((m: { key: string; value: unknown; n: string }) => [m.key, m.value, m.n]),
    Array.from({ length: 6 }, (_, i) => [`k${i}`, { i }, String(i)]),
  );
}

Deno.test("the client runs outside the repository: by path, as an npm package, in a strict-CSP page", async (t) => {
  await using broker = await startBroker();
  const scratch = await Deno.makeTempDir({ prefix: "rill-travel-" });
  try {
    await t.step("mod.ts loads with --no-config and only --allow-net", async () => {
      const dir = `${scratch}/by-path`;
      await Deno.mkdir(dir);
      const script = await place("smoke.mjs", dir, new URL(`file://${REPO}mod.ts`).href);
      const { stdout } = await sh(Deno.execPath(), [
        "run",
        "--no-config",
        "--no-lock",
        "--allow-net",
        script,
        broker.url,
      ], dir);
      checkRoundTrip(stdout);
    });

    await t.step("the examples run from another directory as the README shows", async () => {
      const env = ["--no-config", "--no-lock", "--allow-net", "--allow-env"];
      const produced = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...env, `${REPO}examples/producer.ts`],
        cwd: scratch,
        env: { RILL_BROKER: broker.url, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(produced.stdout);
      assert.equal(produced.code, 0, new TextDecoder().decode(produced.stderr));
      assert.match(out, /stored in greetings-\d at offset \d+/);
    });

    const { dir: packageDir, tarball } = await buildPackage(`${scratch}/dist`, true);
    assert.ok(tarball);

    await t.step(
      "the npm package: import and require in Node 20, types under tsc --strict",
      async () => {
        const dir = `${scratch}/node-project`;
        await Deno.mkdir(dir);
        await Deno.writeTextFile(
          `${dir}/package.json`,
          JSON.stringify({ name: "scratch", private: true }),
        );
        await sh("npm", [
          "install",
          "--no-audit",
          "--no-fund",
          "--loglevel=error",
          tarball!,
          "typescript@5.9.3",
        ], dir);
        const { stdout: version } = await sh("node", ["--version"], dir);
        assert.match(version, /^v2\d\./);
        const esm = await place("smoke.mjs", dir, "@rill/client");
        checkRoundTrip((await sh("node", [esm, broker.url], dir)).stdout);
        const cjs = await place("smoke.cjs", dir, "@rill/client");
        const required = JSON.parse((await sh("node", [cjs, broker.url], dir)).stdout.trim());
        assert.deepEqual(required, { listed: true, error: "function" });
        await Deno.copyFile(`${TRAVEL}typed.ts`, `${dir}/typed.ts`);
        await sh("npx", [
          "--no-install",
          "tsc",
          "--strict",
          "--noEmit",
          "--target",
          "ES2022",
          "--module",
          "NodeNext",
          "--moduleResolution",
          "NodeNext",
          "typed.ts",
        ], dir);
      },
    );

    await t.step("the npm package in a scratch Deno project", async () => {
      const dir = `${scratch}/deno-project`;
      await Deno.mkdir(dir);
      await Deno.writeTextFile(
        `${dir}/package.json`,
        JSON.stringify({
          name: "scratch",
          private: true,
          dependencies: { "@rill/client": `file:${tarball}` },
        }),
      );
      await sh("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], dir);
      const script = await place("smoke.mjs", dir, "@rill/client");
      const { stdout } = await sh(Deno.execPath(), [
        "run",
        "--allow-net",
        "--allow-read",
        script,
        broker.url,
      ], dir);
      checkRoundTrip(stdout);
    });

    await t.step("the browser bundle works in a page whose CSP refuses WebAssembly", async (t) => {
      try {
        await Deno.stat(CHROMIUM);
      } catch {
        throw new Error(`${CHROMIUM} is missing: install Debian's chromium (.ci/run does)`);
      }
      const bundle = await Deno.readFile(`${packageDir}/browser/rill.js`);
      const page = () =>
        `<!doctype html><meta charset="utf-8"><title>rill</title>
<script src="/watch.js"></script><script type="module" src="/app.js"></script><pre id="out">running</pre>`;
      const app = `import { Rill, crc32cImplementation, portableCrc32cReady } from "/rill.js";
const out = document.getElementById("out");
try {
  const topic = "csp-" + Date.now() + "-" + Math.random().toString(36).slice(2, 8);
  const rill = new Rill({ brokers: [${JSON.stringify(broker.url)}] });
  await rill.admin().createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const producer = rill.producer();
  await producer.send({ topic, messages: [{ key: "k", value: "from a strict page" }] });
  await producer.disconnect();
  const consumer = rill.consumer({ maxWaitMs: 200 });
  await consumer.assign([{ topic, partition: 0, offset: "earliest" }]);
  let value = null;
  for await (const m of consumer) { value = m.valueString(); break; }
  await portableCrc32cReady();
  out.textContent = JSON.stringify({ value, crc: crc32cImplementation(), refused: globalThis.refused });
} catch (e) {
  out.textContent = "error: " + e;
}
out.dataset.done = "1";`;
      const watch = `globalThis.refused = [];
document.addEventListener("securitypolicyviolation", (e) => refused.push(e.effectiveDirective));`;
      const policies = {
        strict: "default-src 'self'; script-src 'self'; connect-src *",
        wasm: "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src *",
      } as const;
      let policy: string = policies.strict;
      await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
        const path = new URL(req.url).pathname;
        const headers = { "content-security-policy": policy };
        if (path === "/") {
          return new Response(page(), { headers: { ...headers, "content-type": "text/html" } });
        }
        if (path === "/watch.js") {
          return new Response(watch, {
            headers: { ...headers, "content-type": "text/javascript" },
          });
        }
        if (path === "/app.js") {
          return new Response(app, { headers: { ...headers, "content-type": "text/javascript" } });
        }
        if (path === "/rill.js") {
          return new Response(bundle, {
            headers: { ...headers, "content-type": "text/javascript" },
          });
        }
        return new Response("not found", { status: 404 });
      });
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      try {
        for (const [name, csp] of Object.entries(policies)) {
          await t.step(
            name === "strict"
              ? "script-src 'self': pure-JS CRC"
              : "with 'wasm-unsafe-eval': WebAssembly CRC",
            async () => {
              policy = csp;
              const tab = await browser.newPage();
              await tab.goto(`http://127.0.0.1:${server.addr.port}/`);
              await tab.locator("#out[data-done]").waitFor();
              const text = await tab.locator("#out").textContent();
              assert.ok(text && !text.startsWith("error"), `the page reported ${text}`);
              const shown = JSON.parse(text!);
              assert.equal(shown.value, "from a strict page");
              assert.equal(shown.crc, name === "strict" ? "js" : "wasm");
              // The strict page refused WebAssembly; the other allowed it.
              assert.deepEqual(shown.refused, name === "strict" ? ["script-src"] : []);
              await tab.close();
            },
          );
        }
      } finally {
        await browser.close();
      }
    });
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
});
