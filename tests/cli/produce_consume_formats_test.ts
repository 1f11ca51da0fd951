/**
 * `rill produce` and `rill consume` formats against a broker process: JSON input with
 * headers and base64 values, `--header`, `--file`, `--verbose` offsets and the final count;
 * consume templates, binary values shown safely, `--offset` on every partition and
 * `--from-timestamp` with an ISO time.
 */
import assert from "node:assert/strict";
import { startBroker } from "../_helpers/broker_process.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function rill(args: string[], env: Record<string, string>, stdin?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("produce JSON/file/headers/verbose and consume templates, binary and start points", async () => {
  await using broker = await startBroker();
  await using dir = await tempDir();
  const env = { RILL_BROKER: broker.url };
  assert.equal((await rill(["topics", "create", "fmt", "--partitions", "2"], env)).code, 0);

  // JSON lines: a keyed text record, a binary value (0xff 0x00 0x01), a bell in the text.
  const jsonLines = [
    JSON.stringify({ key: "k1", value: "hello", headers: { trace: "t-1" }, partition: 0 }),
    JSON.stringify({ key: "k2", value: "/wAB", valueEncoding: "base64", partition: 0 }),
    JSON.stringify({ value: "ring\u0007bell", partition: 1 }),
  ].join("\n") + "\n";
  const p1 = await rill(
    ["produce", "fmt", "--format", "json", "--header", "src=cli", "--verbose", "--acks", "1"],
    env,
    jsonLines,
  );
  assert.equal(p1.code, 0, p1.stderr);
  assert.deepEqual(p1.stdout.split("\n").filter(Boolean), ["0 0", "0 1", "1 0"]);
  assert.equal(p1.stderr, "Produced 3 records to fmt\n");

  const bad = await rill(["produce", "fmt", "--format", "json"], env, '{"valu":"x"}\n');
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'rill: Line 1 has an unknown field "valu"\n');

  const file = `${dir.path}/lines.txt`;
  await Deno.writeTextFile(file, "from-file-1\nfrom-file-2\n");
  const p2 = await rill(["produce", "fmt", "--file", file, "--partition", "1"], env);
  assert.equal(p2.code, 0, p2.stderr);
  assert.equal(p2.stderr, "Produced 2 records to fmt\n");

  const template = await rill([
    "consume",
    "fmt",
    "--partition",
    "0",
    "--from-beginning",
    "--max-messages",
    "2",
    "--format",
    "%t/%p/%o %k=%v [%h]",
  ], env);
  assert.equal(template.code, 0, template.stderr);
  assert.equal(
    template.stdout,
    "fmt/0/0 k1=hello [src=cli,trace=t-1]\nfmt/0/1 k2=base64:/wAB [src=cli]\n",
  );

  const text = await rill(
    ["consume", "fmt", "--partition", "1", "--offset", "0", "--max-messages", "3"],
    env,
  );
  assert.equal(text.stdout, "ring\\x07bell\nfrom-file-1\nfrom-file-2\n");

  // --offset without --partition starts every partition there.
  const everywhere = await rill(
    ["consume", "fmt", "--offset", "1", "--max-messages", "2", "--format", "%p:%o"],
    env,
  );
  assert.equal(everywhere.code, 0, everywhere.stderr);
  assert.deepEqual(everywhere.stdout.split("\n").filter(Boolean).sort(), ["0:1", "1:1"]);

  const json = await rill(
    [
      "consume",
      "fmt",
      "--partition",
      "0",
      "--offset",
      "1",
      "--max-messages",
      "1",
      "--format",
      "json",
    ],
    env,
  );
  const record = JSON.parse(json.stdout);
  assert.equal(record.value, "/wAB");
  assert.equal(record.valueEncoding, "base64");
  assert.equal(record.key, "k2");

  // A time after everything: nothing; a time before: everything of the partition.
  const future = await rill([
    "consume",
    "fmt",
    "--from-timestamp",
    new Date(Date.now() + 3_600_000).toISOString(),
    "--timeout-ms",
    "1500",
  ], env);
  assert.equal(future.code, 0, future.stderr);
  assert.equal(future.stdout, "");
  const past = await rill([
    "consume",
    "fmt",
    "--partition",
    "1",
    "--from-timestamp",
    "2020-01-01T00:00:00Z",
    "--max-messages",
    "3",
    "--format",
    "%o",
  ], env);
  assert.equal(past.stdout, "0\n1\n2\n");
  const wrongTime = await rill(["consume", "fmt", "--from-timestamp", "yesterday"], env);
  assert.equal(wrongTime.code, 2);
  assert.match(wrongTime.stderr, /--from-timestamp must be milliseconds since the epoch or an ISO/);
  const wrongDirective = await rill(
    ["consume", "fmt", "--from-beginning", "--max-messages", "1", "--format", "%q"],
    env,
  );
  assert.equal(wrongDirective.code, 2);
  assert.match(wrongDirective.stderr, /unknown directive "%q"/);
});
