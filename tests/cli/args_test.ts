import assert from "node:assert/strict";
import {
  brokerUrl,
  configOptions,
  expectPositionals,
  intOption,
  parseCommand,
  UsageError,
} from "../../src/cli/common.ts";
import { lineToMessage, readLines } from "../../src/cli/produce.ts";
import { oneLine } from "../../src/cli/main.ts";
import { RillError } from "../../src/protocol/errors.ts";

Deno.test("parseCommand adds --help and --broker and refuses unknown options", () => {
  const { values, positionals } = parseCommand(
    [
      "create",
      "t",
      "--partitions",
      "3",
      "--broker",
      "http://b:1",
      "--config",
      "a=1",
      "--config",
      "b=2",
    ],
    { partitions: { type: "string" }, config: { type: "string", multiple: true } },
  );
  assert.deepEqual(positionals, ["create", "t"]);
  assert.equal(values.partitions, "3");
  assert.equal(values.broker, "http://b:1");
  assert.deepEqual(values.config, ["a=1", "b=2"]);
  assert.throws(() => parseCommand(["--nope"], {}), UsageError);
  assert.throws(() => parseCommand(["--broker"], {}), UsageError);
});

Deno.test("brokerUrl prefers --broker, then $RILL_BROKER, then the default", () => {
  const env = (v?: string) => () => v;
  assert.equal(brokerUrl("http://a:1/", env("http://b:2")), "http://a:1");
  assert.equal(brokerUrl(undefined, env("http://b:2")), "http://b:2");
  assert.equal(brokerUrl(undefined, env()), "http://127.0.0.1:8092");
  assert.throws(() => brokerUrl("ftp://x", env()), /http/);
  assert.throws(() => brokerUrl("not a url", env()), UsageError);
});

Deno.test("intOption and configOptions check their input", () => {
  assert.equal(intOption("--n", "12", 1), 12);
  assert.equal(intOption("--n", undefined), undefined);
  assert.throws(() => intOption("--n", "0", 1), /at least 1/);
  assert.throws(() => intOption("--n", "1.5"), /integer/);
  assert.throws(() => intOption("--n", "99999999999999999999"), /2\^53/);
  assert.deepEqual(configOptions(["retention.ms=1", "x=a=b"]), { "retention.ms": "1", x: "a=b" });
  assert.equal(configOptions(undefined), undefined);
  assert.throws(() => configOptions(["novalue"]), UsageError);
  assert.throws(() => configOptions(["=v"]), UsageError);
  assert.deepEqual(expectPositionals(["a"], ["NAME"]), ["a"]);
  assert.throws(() => expectPositionals([], ["NAME"]), /Missing NAME/);
  assert.throws(() => expectPositionals(["a", "b"], ["NAME"]), /Unexpected argument "b"/);
});

Deno.test("readLines splits across chunk boundaries and strips CR", async () => {
  const enc = new TextEncoder();
  const chunks = ["a\r\nb", "b\n", "", "\nc", "ö"].map((s) => enc.encode(s));
  // A multi-byte character split between chunks.
  const split = enc.encode("\nxé");
  chunks.push(split.subarray(0, split.length - 1), split.subarray(split.length - 1));
  const stream = ReadableStream.from(chunks);
  const lines: string[] = [];
  for await (const l of readLines(stream)) lines.push(l);
  assert.deepEqual(lines, ["a", "bb", "", "cö", "xé"]);
  const empty: string[] = [];
  for await (const l of readLines(ReadableStream.from([]))) empty.push(l);
  assert.deepEqual(empty, []);
});

Deno.test("lineToMessage splits at the first key separator", () => {
  assert.deepEqual(lineToMessage("k:v:w", ":", 1), { key: "k", value: "v:w" });
  assert.deepEqual(lineToMessage("plain", undefined, 1), { value: "plain" });
  assert.deepEqual(lineToMessage("::", "::", 1), { key: "", value: "" });
  assert.throws(() => lineToMessage("nosep", ":", 7), /Line 7 has no key separator/);
});

Deno.test("oneLine keeps errors to one line with their code", () => {
  assert.equal(
    oneLine(new RillError("TOPIC_ALREADY_EXISTS", 'Topic "a" exists')),
    'TOPIC_ALREADY_EXISTS: Topic "a" exists',
  );
  assert.equal(oneLine(new Error("first\nsecond")), "first");
});
