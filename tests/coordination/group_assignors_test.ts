import assert from "node:assert/strict";
import fc from "fast-check";
import { assign, ASSIGNORS } from "../../src/coordination/group_assignors.ts";
import type { TopicPartitions } from "../../src/coordination/group_keys.ts";
import { size, toList } from "../../src/coordination/group_partitions.ts";

const members = (ids: string[], topics = ["t"]) => ids.map((memberId) => ({ memberId, topics }));

function flat(a: Record<string, TopicPartitions>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [id, s] of Object.entries(a)) {
    out[id] = toList(s).map((tp) => `${tp.topic}-${tp.partition}`);
  }
  return out;
}

/** How many partitions changed owner between two assignments. */
function moved(a: Record<string, TopicPartitions>, b: Record<string, TopicPartitions>): number {
  const owner = new Map<string, string>();
  for (const [id, s] of Object.entries(a)) {
    for (const tp of toList(s)) owner.set(`${tp.topic}-${tp.partition}`, id);
  }
  let n = 0;
  for (const [id, s] of Object.entries(b)) {
    for (const tp of toList(s)) {
      const was = owner.get(`${tp.topic}-${tp.partition}`);
      if (was !== undefined && was !== id) n++;
    }
  }
  return n;
}

Deno.test("assign('range') gives contiguous ranges, the first members one more", () => {
  const a = assign("range", { members: members(["c", "a", "b"]), partitionCounts: { t: 7 } });
  assert.deepEqual(flat(a), {
    a: ["t-0", "t-1", "t-2"],
    b: ["t-3", "t-4"],
    c: ["t-5", "t-6"],
  });
});

Deno.test("assign('roundrobin') deals partitions in member order, skipping non-subscribers", () => {
  const a = assign("roundrobin", {
    members: [{ memberId: "a", topics: ["t", "u"] }, { memberId: "b", topics: ["t"] }],
    partitionCounts: { t: 3, u: 2 },
  });
  assert.deepEqual(flat(a), { a: ["t-0", "t-2", "u-0", "u-1"], b: ["t-1"] });
});

Deno.test("assign('sticky') moves one partition per joiner short of its share and only the leaver's", () => {
  const three = assign("sticky", { members: members(["a", "b", "c"]), partitionCounts: { t: 6 } });
  assert.deepEqual(Object.values(three).map(size), [2, 2, 2]);
  const four = assign("sticky", {
    members: members(["a", "b", "c", "d"]),
    partitionCounts: { t: 6 },
    previous: three,
  });
  assert.deepEqual(Object.values(four).map(size).sort(), [1, 1, 2, 2]);
  assert.equal(moved(three, four), 1, "a joiner takes one partition, nobody else moves");
  const two = assign("sticky", {
    members: members(["a", "c"]),
    partitionCounts: { t: 6 },
    previous: three,
  });
  assert.equal(moved(three, two), 2, "only the leaver's two partitions change owner");
  for (const id of ["a", "c"]) {
    const now = flat(two)[id];
    for (const n of flat(three)[id]) assert.ok(now.includes(n), `${id} keeps ${n}`);
  }
  assert.deepEqual(Object.values(two).map(size), [3, 3]);
  // range, by contrast, reshuffles on a join
  const r3 = assign("range", { members: members(["a", "b", "c"]), partitionCounts: { t: 12 } });
  const r4 = assign("range", {
    members: members(["a", "b", "c", "d"]),
    partitionCounts: { t: 12 },
  });
  assert.ok(moved(r3, r4) > 1);
});

Deno.test("assign() leaves members beyond the partition count idle", () => {
  for (const name of ASSIGNORS) {
    const a = assign(name, { members: members(["a", "b", "c", "d"]), partitionCounts: { t: 3 } });
    assert.deepEqual(Object.values(a).map(size).sort(), [0, 1, 1, 1], name);
  }
});

Deno.test("assign() (property): each partition goes to exactly one subscribed member, balanced", () => {
  const topicNames = ["t", "u", "v"];
  fc.assert(
    fc.property(
      fc.constantFrom(...ASSIGNORS),
      fc.uniqueArray(fc.stringMatching(/^[a-z]{1,3}$/), { minLength: 1, maxLength: 8 }),
      fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 3, maxLength: 3 }),
      fc.boolean(),
      fc.integer({ min: 0, max: 1000 }),
      (name, ids, counts, sameTopics, seed) => {
        const ms = ids.map((memberId, i) => ({
          memberId,
          topics: sameTopics
            ? topicNames
            : topicNames.filter((_, j) => ((seed >> (i + j)) & 1) || j === i % 3),
        }));
        const partitionCounts = Object.fromEntries(topicNames.map((t, i) => [t, counts[i]]));
        const prev = assign("sticky", { members: ms.slice(1), partitionCounts });
        const out = assign(name, { members: ms, partitionCounts, previous: prev });
        const owner = new Map<string, string>();
        for (const [id, s] of Object.entries(out)) {
          const m = ms.find((x) => x.memberId === id)!;
          for (const tp of toList(s)) {
            const k = `${tp.topic}-${tp.partition}`;
            assert.ok(!owner.has(k), `${k} assigned twice`);
            assert.ok(m.topics.includes(tp.topic), `${id} is not subscribed to ${tp.topic}`);
            owner.set(k, id);
          }
        }
        const wanted = topicNames.filter((t) => ms.some((m) => m.topics.includes(t)));
        assert.equal(owner.size, wanted.reduce((n, t) => n + partitionCounts[t], 0));
        if (sameTopics && name !== "range") {
          const sizes = Object.values(out).map(size);
          assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `unbalanced ${sizes}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});
