/**
 * The sweep marks of the request timeout (src/client/request_deadlines.ts), with the sweeps'
 * clock given: a request is overdue once a mark taken after it was sent is older than its
 * allowance (the timeout, plus a long poll's wait), never before.
 */
import assert from "node:assert/strict";
import { SendMarks } from "../../src/client/request_deadlines.ts";
import { PendingRequests } from "../../src/client/pending_requests.ts";

Deno.test("SendMarks: a request is overdue one sweep after its timeout, a long poll after its wait too", () => {
  const marks = new SendMarks(1000);
  const pending = new PendingRequests<{ wait?: number; name: string }>();
  let nextId = 1;
  const send = (name: string, wait?: number) => pending.set(nextId++, { wait, name });

  assert.equal(marks.overdue(nextId, 0, pending), undefined); // idle: a mark at 0
  send("poll", 5000); // sent after the mark at 0, before the one at 100
  send("produce");
  assert.equal(marks.overdue(nextId, 100, pending), undefined);
  // The produce was sent before 100: not overdue at 1099, overdue at 1100.
  assert.equal(marks.overdue(nextId, 1099, pending), undefined);
  assert.equal(marks.overdue(nextId, 1100, pending)?.name, "produce");
  pending.delete(2);
  // The poll may be held 5 s more.
  assert.equal(marks.overdue(nextId, 6099, pending), undefined);
  assert.equal(marks.overdue(nextId, 6100, pending)?.name, "poll");
  pending.delete(1);
  // A request sent later is measured from the mark after it.
  send("late");
  assert.equal(marks.overdue(nextId, 7000, pending), undefined);
  assert.equal(marks.overdue(nextId, 7999, pending), undefined);
  assert.equal(marks.overdue(nextId, 8000, pending)?.name, "late");
});
