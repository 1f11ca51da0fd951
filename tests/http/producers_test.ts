/**
 * The producer routes through the Hono app: id allocation (fresh ids, keyed ids with a
 * bumped epoch), the producer state of a partition, and bad requests.
 */
import assert from "node:assert/strict";
import { BatchBuilder } from "../../src/client/batch_builder.ts";
import { openTestBroker } from "./_app.ts";

Deno.test("POST /v1/producers allocates ids; a key keeps its id with the next epoch", async () => {
  await using t = await openTestBroker();
  const a = await t.call("POST", "/v1/producers", {});
  const b = await t.call("POST", "/v1/producers", {});
  assert.equal(a.status, 200);
  assert.notEqual(a.body.producerId, b.body.producerId);
  assert.deepEqual([a.body.producerEpoch, b.body.producerEpoch], [0, 0]);
  const k1 = await t.call("POST", "/v1/producers", { producerKey: "app-0" });
  const k2 = await t.call("POST", "/v1/producers", { transactionalId: "app-0" });
  assert.equal(k2.body.producerId, k1.body.producerId);
  assert.equal(k2.body.producerEpoch, k1.body.producerEpoch + 1);
  for (const bad of [{ producerKey: 3 }, { producerKey: "" }, { other: 1 }]) {
    const r = await t.call("POST", "/v1/producers", bad);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, "INVALID_REQUEST");
  }
});

Deno.test("GET /v1/producers/{id} reports the producer's last batch in a partition", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "orders", partitions: 1 });
  const { body: id } = await t.call("POST", "/v1/producers", {});
  const b = new BatchBuilder(512);
  b.append(Date.now(), null, "a", undefined);
  b.append(Date.now(), null, "b", undefined);
  const batch = b.build({ producerId: id.producerId, producerEpoch: 0, baseSequence: 0 }).slice();
  const produced = await t.call("POST", "/v1/topics/orders/records?partition=0", batch, {
    "content-type": "application/vnd.rill.batch",
  });
  assert.equal(produced.status, 200);
  const state = await t.call("GET", `/v1/producers/${id.producerId}?topic=orders&partition=0`);
  assert.deepEqual(state.body, {
    producerId: id.producerId,
    producerEpoch: 0,
    lastSequence: 1,
    baseOffset: 0,
    lastOffset: 1,
  });
  const none = await t.call("GET", `/v1/producers/${id.producerId + 1}?topic=orders&partition=0`);
  assert.equal(none.status, 404);
  assert.equal(none.body.error.code, "NOT_FOUND");
  const missing = await t.call("GET", `/v1/producers/${id.producerId}`);
  assert.equal(missing.status, 400);
  const unknown = await t.call("GET", `/v1/producers/${id.producerId}?topic=nope&partition=0`);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, "UNKNOWN_TOPIC_OR_PARTITION");
});
