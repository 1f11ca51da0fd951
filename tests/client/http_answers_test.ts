import assert from "node:assert/strict";
import { produceAnswer } from "../../src/client/http_answers.ts";
import { type ProduceRoute, produceUrl } from "../../src/client/http_produce.ts";

/** A minimal produce answer (204, offsets in headers) as a server sends it, fetched. */
async function served(headers: [string, string][], status = 204): Promise<Response> {
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    const res = new Response(null, { status });
    for (const [name, value] of headers) res.headers.append(name, value);
    return res;
  });
  const res = await fetch(`http://127.0.0.1:${server.addr.port}/`, { method: "POST", body: "x" });
  await res.body?.cancel();
  return res;
}

Deno.test("produceAnswer reads a minimal answer's offsets, served or made in code", async () => {
  const headers: [string, string][] = [
    ["Preference-Applied", "return=minimal"],
    ["Rill-Base-Offset", "40"],
    ["Rill-Last-Offset", "42"],
  ];
  const want = { partition: 3, baseOffset: 40, lastOffset: 42, recordCount: 3, logAppendTime: -1 };
  assert.deepEqual(produceAnswer(await served(headers), 3, "1"), want);
  // Names as given, capitals kept: read through Headers.get.
  const made = new Response(null, { status: 204, headers });
  assert.deepEqual(produceAnswer(made, 3, "1"), want);
  // One with capitals, the others not: each still read.
  const mixed = new Response(null, {
    status: 204,
    headers: [["rill-base-offset", "40"], ["Rill-Last-Offset", "42"]],
  });
  assert.deepEqual(produceAnswer(mixed, 3, "1"), want);

  const withTime = await served([...headers, ["rill-log-append-time", "1700000000000"]]);
  assert.deepEqual(produceAnswer(withTime, 0, "all"), {
    partition: 0,
    baseOffset: 40,
    lastOffset: 42,
    recordCount: 3,
    logAppendTime: 1700000000000,
  });
  // A single record: no last offset needed.
  assert.deepEqual(produceAnswer(await served([["rill-base-offset", "7"]]), 1, "1"), {
    partition: 1,
    baseOffset: 7,
    lastOffset: 7,
    recordCount: 1,
    logAppendTime: -1,
  });
});

Deno.test("produceAnswer: a header given twice is combined as Headers.get does; acks=0 and no offsets give null", async () => {
  // Combined ("40, 41"): not a number, as before the one-pass read.
  const twice = await served([["rill-base-offset", "40"], ["rill-base-offset", "41"]]);
  const answer = produceAnswer(twice, 0, "1") as { baseOffset: number };
  assert.ok(Number.isNaN(answer.baseOffset));
  assert.equal(await produceAnswer(await served([["rill-base-offset", "5"]]), 0, "0"), null);
  assert.equal(await produceAnswer(await served([]), 0, "1"), null);
});

Deno.test("produceUrl: a partition's produce URL follows its broker and acks", () => {
  const route: ProduceRoute = { key: "a%2Fb/3", read: false, paths: new Map() };
  const one = "/v1/topics/a%2Fb/records?partition=3&acks=1";
  assert.equal(produceUrl(route, "http://x:1", 3, "1"), "http://x:1" + one);
  assert.equal(produceUrl(route, "http://x:1", 3, "1"), "http://x:1" + one);
  assert.equal(produceUrl(route, "http://y:2", 3, "1"), "http://y:2" + one);
  assert.equal(
    produceUrl(route, "http://y:2", 3, "all"),
    "http://y:2/v1/topics/a%2Fb/records?partition=3&acks=all",
  );
  assert.equal(produceUrl(route, "http://x:1", 3, "1"), "http://x:1" + one);
});
