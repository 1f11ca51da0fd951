import assert from "node:assert/strict";
import { tuneMalloc } from "../../src/broker/malloc_tuning.ts";

Deno.test("tuneMalloc tunes glibc on Linux and its close() stops the trim timer", () => {
  const tuning = tuneMalloc({ trimIntervalMs: 10 });
  // This machine (and CI) is Linux with glibc, and tests run with -A.
  assert.equal(tuning.active, Deno.build.os === "linux");
  tuning.close();
  tuning.close(); // twice is harmless; the test's sanitizer sees no leaked interval
});

Deno.test({
  name: "tuneMalloc trims on a thread of its own: the event loop runs while a trim is under way",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const tuning = tuneMalloc({ trimIntervalMs: 1, trimGrowthBytes: 0, idleMs: 0 });
    // A trim run on the event loop could never be seen under way from a timer.
    let seen = false;
    const until = performance.now() + 5000;
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (tuning.trimming) seen = true;
        if ((seen && tuning.trims > 0) || performance.now() > until) {
          clearInterval(t);
          resolve();
        }
      }, 1);
    });
    assert.ok(seen, `no timer fired while a trim ran (${tuning.trims} trims)`);
    tuning.close(); // a trim under way closes the library when it returns
    while (tuning.trimming) await new Promise((r) => setTimeout(r, 1));
  },
});

Deno.test({
  name: "tuneMalloc's first trim waits until resident memory grew past its start",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const growth = 32 * 1024 * 1024;
    // This process is already bigger than `growth`: counted from zero, it would trim at once.
    assert.ok(Deno.memoryUsage().rss > growth);
    const start = Deno.memoryUsage().rss;
    const tuning = tuneMalloc({ trimIntervalMs: 1, trimGrowthBytes: growth, idleMs: 0 });
    try {
      const ticks = async (n: number) => {
        for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 2));
      };
      await ticks(20);
      assert.equal(tuning.trims + (tuning.trimming ? 1 : 0), 0, "trimmed with no growth");
      // Grown past it (pages touched, so resident): the next check trims. Grown from the
      // start, not by a fixed amount: the garbage of the tests before may have been given
      // back since (in the full suite, this process shrank by more than 32 MiB meanwhile).
      const held: Uint8Array[] = [];
      while (Deno.memoryUsage().rss < start + 2 * growth && held.length < 64) {
        held.push(new Uint8Array(8 * 1024 * 1024).fill(1));
      }
      const grown = Deno.memoryUsage().rss - start;
      assert.ok(grown >= 2 * growth, `resident memory grew only ${grown} bytes`);
      const until = performance.now() + 5000;
      while (tuning.trims === 0 && performance.now() < until) await ticks(1);
      assert.ok(tuning.trims > 0, `no trim after growing ${grown} bytes`);
    } finally {
      tuning.close();
      while (tuning.trimming) await new Promise((r) => setTimeout(r, 1));
    }
  },
});

/** Holds the event loop `ms` (a busy broker's turn), then lets it turn once. */
async function busyTurn(ms: number) {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* the event loop is held */ }
  await new Promise((r) => setTimeout(r, 0));
}

Deno.test({
  name: "tuneMalloc's due trim waits while the event loop is busy and runs once it is idle",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // A tick late by 25 ms is busy: on a loaded machine (the full suite, other processes) a
    // timer of an idle loop may well come 5-10 ms late, and the loop would never look idle.
    const tuning = tuneMalloc({
      trimIntervalMs: 1,
      trimGrowthBytes: 0,
      idleMs: 300,
      busyLagMs: 25,
    });
    try {
      // Every turn holds the loop 60 ms: each timer tick comes late, so the loop is never idle.
      for (let i = 0; i < 20; i++) {
        await busyTurn(60);
        assert.equal(tuning.trims + (tuning.trimming ? 1 : 0), 0, "trimmed while busy");
      }
      assert.ok(tuning.pending, "no trim due after growing past 0 bytes");
      // Idle now: the trim runs.
      const until = performance.now() + 10_000;
      while (tuning.trims === 0 && performance.now() < until) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(tuning.trims > 0, "no trim once the event loop was idle");
      assert.ok(!tuning.pending);
    } finally {
      tuning.close();
      while (tuning.trimming) await new Promise((r) => setTimeout(r, 1));
    }
  },
});

Deno.test({
  name: "tuneMalloc trims a busy broker anyway once the trim waited maxPostponeMs",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const tuning = tuneMalloc({
      trimIntervalMs: 1,
      trimGrowthBytes: 0,
      idleMs: 3_600_000,
      busyLagMs: 5,
      maxPostponeMs: 100,
    });
    try {
      // Never idle (and idleMs an hour): only the postponement bound can start this trim.
      const until = performance.now() + 10_000;
      while (tuning.trims === 0 && performance.now() < until) await busyTurn(20);
      assert.ok(tuning.trims > 0, "a busy broker never trimmed");
    } finally {
      tuning.close();
      while (tuning.trimming) await new Promise((r) => setTimeout(r, 1));
    }
  },
});

Deno.test("tuneMalloc does nothing, and never prompts, without FFI", async () => {
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const module = new URL("../../src/broker/malloc_tuning.ts", import.meta.url).href;
  const dir = await Deno.makeTempDir({ prefix: "rill-malloc-" });
  try {
    const file = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      file,
      `const { tuneMalloc } = await import(${JSON.stringify(module)});\n` +
        `const t = tuneMalloc();\nconsole.log(t.active);\nt.close();`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--config", config, "--allow-read", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "false");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
