import assert from "node:assert/strict";
import { openTestBroker } from "./_app.ts";

Deno.test("cluster balancing routes: status, dry run, and bad requests that change nothing", async () => {
  await using t = await openTestBroker();
  const created = await t.call("POST", "/v1/topics", { name: "t", partitions: 2 });
  assert.equal(created.status, 201);

  const status = await t.call("GET", "/v1/cluster/status");
  assert.equal(status.status, 200);
  assert.deepEqual(
    status.body.brokers.map((b: { id: number; replicas: number }) => [b.id, b.replicas]),
    [[1, 2]],
  );
  assert.equal(status.body.pending, 0);

  const dry = await t.call("POST", "/v1/cluster/rebalance", {});
  assert.equal(dry.status, 200);
  assert.deepEqual(dry.body.moves, [], "one broker: nothing to move");
  assert.equal(dry.body.executed, false);

  for (
    const [path, body, code] of [
      ["/v1/cluster/rebalance", { execute: "yes" }, "INVALID_REQUEST"],
      ["/v1/cluster/rebalance", { force: true }, "INVALID_REQUEST"],
      ["/v1/cluster/decommission", { brokerId: "1" }, "INVALID_REQUEST"],
      ["/v1/cluster/decommission", { brokerId: 7 }, "INVALID_REQUEST"],
      ["/v1/cluster/elect-leaders", { topic: 3 }, "INVALID_REQUEST"],
      ["/v1/cluster/elect-leaders", { topic: "nope" }, "UNKNOWN_TOPIC_OR_PARTITION"],
      ["/v1/cluster/recommission", {}, "INVALID_REQUEST"],
      ["/v1/cluster/recommission", { brokerId: 1 }, "INVALID_REQUEST"],
      ["/v1/cluster/cancel-moves", { all: true }, "INVALID_REQUEST"],
    ] as const
  ) {
    const r = await t.call("POST", path, body);
    assert.ok(r.status >= 400 && r.status < 500, `${path} ${JSON.stringify(body)}: ${r.status}`);
    assert.equal(r.body.error.code, code, JSON.stringify(r.body));
    assert.equal(typeof r.body.error.message, "string");
  }
  const after = await t.call("GET", "/v1/cluster/status");
  assert.equal(after.body.plan, null, "no plan was stored");
  assert.deepEqual(after.body.brokers.map((b: { decommissioned: boolean }) => b.decommissioned), [
    false,
  ]);

  const elect = await t.call("POST", "/v1/cluster/elect-leaders", {});
  assert.equal(elect.status, 200);
  assert.deepEqual(elect.body, { elected: [], notEligible: [] });

  // nothing moving: cancelling changes nothing
  const cancel = await t.call("POST", "/v1/cluster/cancel-moves", {});
  assert.equal(cancel.status, 200);
  assert.deepEqual(cancel.body, {
    dropped: [],
    rolledBack: [],
    notRolledBack: [],
    decommissioned: [],
  });
  const recommission = await t.call("POST", "/v1/cluster/recommission", { brokerId: 1 });
  assert.match(recommission.body.error.message, /Broker 1 is not being decommissioned/);
});
