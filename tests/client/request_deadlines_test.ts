/**
 * The sweep marks of the request timeout (src/client/request_deadlines.ts), with the sweeps'
 * clock given: a request is overdue once a mark taken after it was sent is older than its
 * allowance (the timeout, plus a long poll's wait), never before.
 */
import assert from "node:assert/strict";
import { HttpTimeouts, SendMarks } from "../../src/client/request_deadlines.ts";
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

Deno.test("HttpTimeouts: a request carries its broker's signal, lastSignal without a look-up", () => {
  const timeouts = new HttpTimeouts(60_000);
  const a1 = timeouts.begin("http://a", 0);
  assert.equal(timeouts.lastSignal, timeouts.signal(a1));
  const b1 = timeouts.begin("http://b", 0);
  assert.equal(timeouts.lastSignal, timeouts.signal(b1));
  assert.notEqual(timeouts.signal(b1), timeouts.signal(a1));
  const a2 = timeouts.begin("http://a", 0);
  // Requests to one broker share its signal.
  assert.equal(timeouts.lastSignal, timeouts.signal(a1));
  for (const id of [a1, b1, a2]) timeouts.end(id);
  timeouts.sweep(0); // nothing in flight: off the sweep, no timer left
});
