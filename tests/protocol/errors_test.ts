import assert from "node:assert/strict";
import { ERROR_CODES, errorFromBody, RillError } from "../../src/protocol/errors.ts";

Deno.test("RillError carries the contract's status and retriability", () => {
  const e = new RillError("OFFSET_OUT_OF_RANGE", "Offset 9 is past the end", {
    logStartOffset: 0,
    highWatermark: 3,
  });
  assert.equal(e.status, 416);
  assert.equal(e.retriable, false);
  assert.deepEqual(e.toJSON(), {
    error: {
      code: "OFFSET_OUT_OF_RANGE",
      message: "Offset 9 is past the end",
      retriable: false,
      logStartOffset: 0,
      highWatermark: 3,
    },
  });
  assert.equal(new RillError("NOT_LEADER_OR_FOLLOWER", "x").status, 503);
  assert.equal(new RillError("NOT_LEADER_OR_FOLLOWER", "x").retriable, true);
});

Deno.test("errorFromBody() rebuilds the error a broker sent", () => {
  const sent = new RillError("TOPIC_ALREADY_EXISTS", 'Topic "a" already exists');
  const got = errorFromBody(409, JSON.parse(JSON.stringify(sent.toJSON())));
  assert.equal(got.code, "TOPIC_ALREADY_EXISTS");
  assert.equal(got.message, sent.message);
  assert.equal(got.status, 409);
});

Deno.test("errorFromBody() turns a bodiless 503 into a retriable error", () => {
  const got = errorFromBody(503, "<html>");
  assert.equal(got.retriable, true);
  assert.equal(got.code, "BROKER_NOT_AVAILABLE");
  const other = errorFromBody(500, null);
  assert.equal(other.retriable, false);
});

Deno.test("every error code maps to a 4xx or 5xx status", () => {
  for (const [code, { status }] of Object.entries(ERROR_CODES)) {
    assert.ok(status >= 400 && status < 600, code);
  }
});
