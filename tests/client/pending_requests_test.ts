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
