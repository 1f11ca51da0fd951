/**
 * The test KV Connect endpoint behaves like Deno KV: the same operations, run through
 * `Deno.openKv("http://127.0.0.1:PORT")` (Deno's own remote client) and on a local KV,
 * give the same transcript.
 */
import assert from "node:assert/strict";
import { KvConnectEndpoint, openRemoteKv } from "../_helpers/kv_connect_server.ts";
import { packKey, unpackKey } from "../_helpers/kv_connect/key_codec.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

const TOKEN = "rill-test-token";

async function openRemote(endpoint: KvConnectEndpoint, token = TOKEN): Promise<Deno.Kv> {
  return await openRemoteKv(endpoint.url, token);
}

/** Replaces versionstamps by their rank among all seen, so two databases compare. */
class Stamps {
  readonly #seen: string[] = [];
  rank(vs: string | null): string | null {
    if (vs === null) return null;
    if (!this.#seen.includes(vs)) this.#seen.push(vs);
    return `v${this.#seen.indexOf(vs)}`;
  }
}

function entries(list: Deno.KvEntryMaybe<unknown>[], stamps: Stamps) {
  return list.map((e) => ({ key: e.key, value: e.value, vs: stamps.rank(e.versionstamp) }));
}

/** Every operation of the remote API whose result can be compared, in one transcript. */
async function transcript(kv: Deno.Kv): Promise<unknown[]> {
  const out: unknown[] = [];
  const stamps = new Stamps();
  const values: [Deno.KvKey, unknown][] = [
    [["t", "str"], "hello"],
    [["t", "num", 1.5], 42],
    [["t", "num", -2], -7.25],
    [["t", "big", 12345678901234567890n], 9007199254740993n],
    [["t", "big", -3n], null],
    [["t", "bool", false], true],
    [["t", "bool", true], [1, "two", { three: 3 }]],
    [["t", "bytes", new Uint8Array([0, 1, 0xff])], new Uint8Array([0, 0, 7])],
    [["t", "obj"], { a: new Uint8Array([1, 0, 2]), m: new Map([["k", 1]]), d: new Date(0) }],
    [["t", "set"], new Set([1, 2])],
    [["t", "u64"], new Deno.KvU64(7n)],
    [["t", "ünïcødé\u0000nul"], "key with a NUL byte"],
    [["u"], "a sibling family"],
  ];
  for (const [key, value] of values) {
    const r = await kv.set(key, value);
    out.push(["set", key, r.ok, stamps.rank(r.versionstamp)]);
  }
  for (const [key] of values) {
    const e = await kv.get(key);
    out.push(["get", e.key, e.value, stamps.rank(e.versionstamp)]);
  }
  out.push(["get absent", entries([await kv.get(["t", "nope"])], stamps)]);
  out.push(["getMany", entries(await kv.getMany([["t", "str"], ["x"], ["t", "u64"]]), stamps)]);
  out.push(["list prefix", entries(await Array.fromAsync(kv.list({ prefix: ["t"] })), stamps)]);
  out.push([
    "list prefix reverse limit",
    entries(await Array.fromAsync(kv.list({ prefix: ["t"] }, { reverse: true, limit: 4 })), stamps),
  ]);
  out.push([
    "list start/end",
    entries(
      await Array.fromAsync(kv.list({ start: ["t", "big"], end: ["t", "num", 1.5] })),
      stamps,
    ),
  ]);
  out.push([
    "list prefix+start",
    entries(await Array.fromAsync(kv.list({ prefix: ["t"], start: ["t", "num"] })), stamps),
  ]);
  out.push([
    "list prefix+end reverse",
    entries(
      await Array.fromAsync(kv.list({ prefix: ["t"], end: ["t", "num"] }, { reverse: true })),
      stamps,
    ),
  ]);
  out.push(["list all", entries(await Array.fromAsync(kv.list({ prefix: [] })), stamps)]);
  // Pages of 2: the client continues from a cursor (a range starting after the last key).
  const paged = kv.list({ prefix: ["t"] }, { batchSize: 2 });
  const pagedEntries = await Array.fromAsync(paged);
  out.push(["list paged", entries(pagedEntries, stamps)]);
  const cursorList = kv.list({ prefix: ["t"] }, { limit: 3 });
  await Array.fromAsync(cursorList);
  out.push([
    "list from cursor",
    entries(
      await Array.fromAsync(kv.list({ prefix: ["t"] }, { cursor: cursorList.cursor })),
      stamps,
    ),
  ]);

  // Atomic checks: the current versionstamp passes, a stale one and "absent" fail.
  const cur = await kv.get(["t", "str"]);
  const ok = await kv.atomic().check(cur).set(["t", "str"], "checked").commit();
  out.push(["check current", ok.ok, ok.ok ? stamps.rank(ok.versionstamp) : null]);
  const stale = await kv.atomic().check(cur).set(["t", "str"], "stale").commit();
  out.push(["check stale", stale.ok]);
  const absent = await kv.atomic().check({ key: ["t", "str"], versionstamp: null })
    .set(["t", "str"], "absent").commit();
  out.push(["check absent on present", absent.ok]);
  const create = await kv.atomic().check({ key: ["t", "new"], versionstamp: null })
    .set(["t", "new"], "created").commit();
  out.push(["check absent on absent", create.ok]);
  out.push(["after checks", entries(await kv.getMany([["t", "str"], ["t", "new"]]), stamps)]);
  // Several mutations commit together or not at all.
  const multi = await kv.atomic().set(["m", 1], "one").set(["m", 2], "two").delete(["u"])
    .commit();
  out.push(["multi", multi.ok]);
  const refused = await kv.atomic().check({ key: ["m", 1], versionstamp: null })
    .set(["m", 3], "three").commit();
  out.push(["multi refused", refused.ok]);
  out.push(["multi state", entries(await kv.getMany([["m", 1], ["m", 3], ["u"]]), stamps)]);

  // sum / min / max on Deno.KvU64, including on absent keys and wrapping sums.
  await kv.atomic().sum(["n", "sum"], 5n).sum(["n", "sum"], 10n).commit();
  await kv.atomic().sum(["t", "u64"], 0xffff_ffff_ffff_fffen).commit();
  await kv.atomic().min(["n", "min"], 9n).commit();
  await kv.atomic().min(["n", "min"], 4n).min(["n", "min"], 6n).commit();
  await kv.atomic().max(["n", "max"], 3n).commit();
  await kv.atomic().max(["n", "max"], 11n).max(["n", "max"], 2n).commit();
  out.push([
    "sum/min/max",
    entries(await kv.getMany([["n", "sum"], ["t", "u64"], ["n", "min"], ["n", "max"]]), stamps),
  ]);
  let sumOnString: string;
  try {
    await kv.atomic().sum(["t", "str"], 1n).commit();
    sumOnString = "committed";
  } catch (e) {
    // A local KV throws a TypeError, a remote one the server's refusal (an Error).
    sumOnString = e instanceof Error ? "threw" : "threw a non-error";
  }
  out.push(["sum on a string", sumOnString]);

  // Versionstamps grow with every commit; one commit's keys share one.
  const a = await kv.set(["vs", "a"], 1);
  const b = await kv.atomic().set(["vs", "b"], 2).set(["vs", "c"], 3).commit();
  assert.ok(b.ok);
  const [eb, ec] = await kv.getMany([["vs", "b"], ["vs", "c"]]);
  out.push([
    "versionstamps",
    a.versionstamp < b.versionstamp,
    eb.versionstamp === b.versionstamp && ec.versionstamp === b.versionstamp,
  ]);

  // Deletes.
  await kv.delete(["t", "set"]);
  out.push(["deleted", entries([await kv.get(["t", "set"])], stamps)]);
  return out;
}

Deno.test("KV Connect endpoint: Deno's remote client gives the same results as a local KV", async () => {
  await using endpoint = await KvConnectEndpoint.start();
  using local = await Deno.openKv(":memory:");
  using remote = await openRemote(endpoint);
  const expected = await transcript(local);
  const actual = await transcript(remote);
  assert.deepEqual(actual, expected);
  // The sum on a string is refused the same way by both, and nothing else was.
  assert.deepEqual(expected.find((step) => (step as unknown[])[0] === "sum on a string"), [
    "sum on a string",
    "threw",
  ]);
});

Deno.test("KV Connect endpoint: watch reports the initial value and each change", async () => {
  await using endpoint = await KvConnectEndpoint.start();
  using local = await Deno.openKv(":memory:");
  using remote = await openRemote(endpoint);
  async function watchTranscript(kv: Deno.Kv) {
    await kv.set(["w", "a"], "first");
    const seen: unknown[] = [];
    const stream = kv.watch([["w", "a"], ["w", "b"]]);
    const reader = stream.getReader();
    const next = async () => {
      const { value } = await reader.read();
      seen.push(value!.map((e) => [e.key, e.value, e.versionstamp === null]));
    };
    await next();
    await kv.set(["w", "b"], 2);
    await next();
    await kv.set(["w", "a"], "second");
    await next();
    await kv.delete(["w", "a"]);
    await next();
    await reader.cancel();
    return seen;
  }
  const expected = await watchTranscript(local);
  assert.equal(expected.length, 4);
  assert.deepEqual(await watchTranscript(remote), expected);
  assert.ok(endpoint.usage().total.watchMessages >= 4);
});

Deno.test("KV Connect endpoint: an expiry sent by the client is kept, like a local KV's", async () => {
  await using dir = await tempDir();
  await using endpoint = await KvConnectEndpoint.start({ path: `${dir.path}/remote.kv` });
  using remote = await openRemote(endpoint);
  const localPath = `${dir.path}/local.kv`;
  // Deno KV drops expired values when it opens a file: reopen after the expiry passed.
  async function expiryTranscript(kv: Deno.Kv, reopen: () => Promise<Deno.Kv>) {
    const until = Date.now() + 50;
    await kv.set(["e", "short"], "soon gone", { expireIn: 50 });
    await kv.set(["e", "long"], "stays", { expireIn: 3_600_000 });
    await kv.set(["e", "none"], "stays too");
    const before = (await kv.getMany([["e", "short"], ["e", "long"], ["e", "none"]]))
      .map((e) => e.value);
    // Waiting for time itself to pass: there is no event to await.
    while (Date.now() <= until) await new Promise((r) => setTimeout(r, until + 1 - Date.now()));
    const again = await reopen();
    const after = (await again.getMany([["e", "short"], ["e", "long"], ["e", "none"]]))
      .map((e) => e.value);
    return { before, after };
  }
  let local = await Deno.openKv(localPath);
  const expected = await expiryTranscript(local, async () => {
    local.close();
    return local = await Deno.openKv(localPath);
  });
  local.close();
  assert.deepEqual(expected.after, [null, "stays", "stays too"]);
  const actual = await expiryTranscript(remote, async () => {
    await endpoint.restart();
    return remote;
  });
  assert.deepEqual(actual, expected);
});

Deno.test("KV Connect endpoint: a wrong token is refused with a clear error", async () => {
  await using endpoint = await KvConnectEndpoint.start();
  const res = await fetch(endpoint.url, {
    method: "POST",
    headers: { authorization: "Bearer wrong", "content-type": "application/json" },
    body: JSON.stringify({ supportedVersions: [1, 2, 3] }),
  });
  assert.equal(res.status, 401);
  assert.match(await res.text(), /access token is missing or not valid/);
  const data = await fetch(`${endpoint.url}/data/snapshot_read`, {
    method: "POST",
    headers: { authorization: "Bearer rill-test-token" },
    body: new Uint8Array(),
  });
  assert.equal(data.status, 401);
  assert.match(await data.text(), /data path token/);
  // Deno's client reports the refusal of the metadata exchange when it opens the database.
  await assert.rejects(() => openRemote(endpoint, "wrong"), /access token is missing or not valid/);
});

Deno.test("KV Connect endpoint: an outage holds operations until it ends; nothing is lost", async () => {
  await using endpoint = await KvConnectEndpoint.start();
  using kv = await openRemote(endpoint);
  await kv.set(["o"], 0);
  endpoint.startOutage();
  const write = kv.set(["o"], 1);
  const read = kv.get(["o"]);
  // Deno's client retries a 503 every ~200 ms: wait until the endpoint has refused some.
  while (endpoint.usage().total.refused < 4) await new Promise((r) => setTimeout(r, 50));
  endpoint.endOutage();
  assert.ok((await write).ok);
  assert.ok([0, 1].includes((await read).value as number));
  assert.equal((await kv.get(["o"])).value, 1);
});

Deno.test("KV Connect endpoint: failures at a 30% rate are retried by the client, every write lands once", async () => {
  await using endpoint = await KvConnectEndpoint.start({ failureRate: 0.3 });
  using kv = await openRemote(endpoint);
  for (let i = 0; i < 20; i++) await kv.atomic().sum(["count"], 1n).commit();
  assert.equal((await kv.get<Deno.KvU64>(["count"])).value?.value, 20n);
  assert.ok(endpoint.usage().total.refused > 0);
});

Deno.test("KV Connect endpoint: usage is counted per token and per key family", async () => {
  await using endpoint = await KvConnectEndpoint.start({ tokens: ["broker-1", "broker-2"] });
  using one = await openRemote(endpoint, "broker-1");
  using two = await openRemote(endpoint, "broker-2");
  await one.get(["x"]); // a wake-up read per client: metadata exchanged
  await two.get(["x"]);
  endpoint.resetUsage();
  await one.set(["rill", "topics", "a"], "x".repeat(1500)); // 2 write units
  await one.getMany([["rill", "topics", "a"], ["rill", "groups", "g"]]); // 1 request, 2 ranges
  await two.atomic().check({ key: ["rill", "groups", "g"], versionstamp: null }).set([
    "rill",
    "groups",
    "g",
  ], 1)
    .commit();
  await two.atomic().check({ key: ["rill", "groups", "g"], versionstamp: null }).set([
    "rill",
    "groups",
    "g",
  ], 2)
    .commit();
  const u = endpoint.usage();
  assert.deepEqual(
    [u.byToken["broker-1"].readRequests, u.byToken["broker-1"].writeRequests],
    [1, 1],
  );
  assert.deepEqual(
    [u.byToken["broker-2"].writeRequests, u.byToken["broker-2"].checkFailures],
    [2, 1],
  );
  assert.equal(u.byFamily["rill/topics"].writeUnits, 2);
  assert.equal(u.byFamily["rill/topics"].ranges, 1);
  assert.equal(u.byFamily["rill/groups"].ranges, 1);
  // Two checks read a unit each; only the write that committed wrote one.
  assert.deepEqual([u.byFamily["rill/groups"].readUnits, u.byFamily["rill/groups"].writeUnits], [
    3,
    1,
  ]);
});

Deno.test("key codec: packKey and unpackKey round-trip every part type in Deno KV's order", async () => {
  using kv = await Deno.openKv(":memory:");
  const keys: Deno.KvKey[] = [
    [new Uint8Array([0, 0xff])],
    ["", "a\u0000b"],
    [-(2n ** 70n)],
    [-256n],
    [-1n],
    [0n],
    [255n],
    [2n ** 64n],
    [-Infinity],
    [-1.5],
    [-0],
    [0],
    [2.5],
    [Infinity],
    [false],
    [true],
  ];
  for (const key of keys) {
    assert.deepEqual(unpackKey(packKey(key)), key);
    await kv.set(key, 1);
  }
  // Byte order of the encodings is the order Deno KV lists keys in.
  const listed = (await Array.fromAsync(kv.list({ prefix: [] }))).map((e) => e.key);
  const sorted = [...listed].sort((x, y) => {
    const a = packKey(x), b = packKey(y);
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  });
  assert.deepEqual(listed, sorted);
  assert.equal(listed.length, keys.length); // -0 and 0 are two keys, as in Deno KV
});
