import assert from "node:assert/strict";
import { PendingRequests } from "../../src/client/pending_requests.ts";

Deno.test("pending requests: entries by id, a count that ignores its sentinel, all taken in order on close", () => {
  const p = new PendingRequests<string>();
  assert.equal(p.size, 0);
  assert.equal(p.get(0), undefined);
  // One request at a time, as a producer awaiting each send: set, answered, deleted.
  for (let id = 1; id <= 100; id++) {
    p.set(id, `r${id}`);
    assert.equal(p.size, 1);
    assert.equal(p.get(id), `r${id}`);
    p.delete(id);
    assert.equal(p.get(id), undefined);
    assert.equal(p.size, 0);
  }
  p.set(101, "a");
  p.set(102, "b");
  p.set(103, "c");
  p.delete(102);
  p.delete(0); // no request has id 0: nothing happens
  assert.equal(p.size, 2);
  assert.deepEqual(p.takeAll(), ["a", "c"]);
  assert.equal(p.size, 0);
  assert.deepEqual(p.takeAll(), []);
  p.set(104, "d");
  assert.equal(p.get(104), "d");
  assert.equal(p.size, 1);
});

Deno.test("pending requests: entries stay in the order set when requests overlap (the first one alone, then others beside it)", () => {
  const p = new PendingRequests<string>();
  p.set(1, "a"); // alone
  p.set(2, "b"); // while 1 waits
  p.set(3, "c");
  assert.deepEqual([...p.entries()], [[1, "a"], [2, "b"], [3, "c"]]);
  p.delete(1);
  assert.equal(p.get(1), undefined);
  p.set(4, "d"); // 2 and 3 still wait: after them
  assert.deepEqual([...p.entries()], [[2, "b"], [3, "c"], [4, "d"]]);
  assert.equal(p.size, 3);
  // Deleting while iterating, as the request timeout's sweep does.
  for (const [id] of p.entries()) p.delete(id);
  assert.equal(p.size, 0);
  assert.deepEqual([...p.entries()], []);
  p.set(5, "e");
  p.set(6, "f");
  assert.equal(p.get(5), "e");
  assert.equal(p.get(6), "f");
  p.set(5, "e2"); // set again under the same id
  assert.equal(p.get(5), "e2");
  assert.equal(p.size, 2);
  for (const [id] of p.entries()) {
    if (id === 5) p.delete(5); // the oldest, deleted while iterating
  }
  assert.deepEqual(p.takeAll(), ["f"]);
  assert.equal(p.size, 0);
});
