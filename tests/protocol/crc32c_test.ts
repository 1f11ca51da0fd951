import assert from "node:assert/strict";
import fc from "fast-check";
import {
  crc32c,
  crc32cImplementation,
  jsCrc32c,
  portableCrc32c,
  portableCrc32cReady,
  useCrc32cImplementation,
  whenCrc32cBusy,
} from "../../src/protocol/crc32c.ts";
import { installNativeCrc32c } from "../../src/protocol/native_crc32c.ts";

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("crc32c() gives the standard CRC-32C check values", () => {
  assert.equal(crc32c(text("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, and of 0xff.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
});

Deno.test("the WebAssembly and pure-JS CRC-32C agree on any bytes", async () => {
  assert.equal(await portableCrc32cReady(), "wasm", "Deno compiles WebAssembly");
  assert.notEqual(crc32cImplementation(), "js", "the WebAssembly one takes over once ready");
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
      assert.equal(portableCrc32c(bytes), jsCrc32c(bytes));
    }),
  );
  // Inputs from 2 KiB go to WebAssembly (shorter ones are summed in JavaScript).
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 2040, maxLength: 9000 }), (bytes) => {
      assert.equal(portableCrc32c(bytes), jsCrc32c(bytes));
    }),
    { numRuns: 50 },
  );
});

Deno.test("the native CRC-32C agrees with the portable one on any bytes", async () => {
  assert.equal(await installNativeCrc32c(), true, "@node-rs/crc32 should load on linux-x64");
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
      assert.equal(crc32c(bytes), portableCrc32c(bytes));
    }),
  );
});

Deno.test("useCrc32cImplementation() refuses a wrong implementation and keeps the old one", () => {
  const before = crc32c(text("abc"));
  assert.throws(() => useCrc32cImplementation(() => 42), /instead of/);
  assert.equal(crc32c(text("abc")), before);
});

Deno.test("the client's native CRC-32C loads only where FFI, read and env are granted", async () => {
  const module = new URL("../../src/protocol/native_crc32c.ts", import.meta.url).href;
  const script = `const m = await import(${JSON.stringify(module)});\n` +
    `console.log(await m.installNativeCrc32c());`;
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "rill-crc-" });
  const file = `${dir}/probe.ts`;
  await Deno.writeTextFile(file, script);
  const run = async (flags: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--config", config, ...flags, file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout).trim();
  };
  // Without the permissions it keeps the portable one, silently and without prompting.
  assert.equal(await run(["--allow-read"]), "false");
  try {
    assert.equal(await run(["--allow-ffi", "--allow-read", "--allow-env"]), "true");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("whenCrc32cBusy() calls its hook once, when the bytes summed pass the mark", () => {
  let calls = 0;
  whenCrc32cBusy(10_000, () => calls++);
  crc32c(new Uint8Array(5_000));
  crc32c(new Uint8Array(4_999));
  assert.equal(calls, 0);
  crc32c(new Uint8Array(1));
  assert.equal(calls, 1);
  crc32c(new Uint8Array(50_000));
  assert.equal(calls, 1);
});

Deno.test("a client process loads the native CRC-32C once it has summed the mark", async () => {
  const crc = new URL("../../src/protocol/crc32c.ts", import.meta.url).href;
  const native = new URL("../../src/protocol/native_crc32c.ts", import.meta.url).href;
  const script = `const c = await import(${JSON.stringify(crc)});\n` +
    `const n = await import(${JSON.stringify(native)});\n` +
    `await c.portableCrc32cReady();\n` +
    `n.installNativeCrc32cWhenBusy(10000);\n` +
    `c.crc32c(new Uint8Array(6000));\n` +
    `const before = c.crc32cImplementation();\n` +
    `c.crc32c(new Uint8Array(6000));\n` +
    // The load it started, awaited (a second call returns the same one).
    `console.log(before, await n.installNativeCrc32c(), c.crc32cImplementation());`;
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "rill-crc-" });
  try {
    const file = `${dir}/busy.ts`;
    await Deno.writeTextFile(file, script);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--config", config, "-A", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "wasm true native");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
