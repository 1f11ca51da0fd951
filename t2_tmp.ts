import { PORTABLE_CODECS, prepareCompression } from "./src/protocol/compression.ts";
await prepareCompression("zstd");
const te = new TextEncoder(), td = new TextDecoder();
function logEvents(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(te.encode(JSON.stringify({ ts: new Date(1_700_000_000_000 + i * 37).toISOString(), level: ["INFO", "WARN", "ERROR"][i % 3], service: `svc-${i % 7}`, message: `request ${i} handled in ${(i * 7919) % 1000} ms` })));
  return out;
}
const json = te.encode(logEvents(6000).map((b) => td.decode(b)).join("\n"));
console.log(json.length);
let t = performance.now();
const c = PORTABLE_CODECS.lz4.compress(json); console.log("c", c.length, performance.now()-t);
Deno.writeFileSync("/tmp/in2", c);
const out = new Deno.Command("lz4", { args: ["-d", "-c", "/tmp/in2"], stdout: "piped", stderr: "piped" }).outputSync();
console.log(out.code, out.stdout.length, td.decode(out.stderr));
