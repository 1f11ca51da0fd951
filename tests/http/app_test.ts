import assert from "node:assert/strict";
import { openTestBroker } from "./_app.ts";

Deno.test("createApp serves consumer groups on the broker's own topics and offsets", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "g", partitions: 2 });
  await t.call("POST", "/v1/topics/g/records", {
    records: [{ value: "a", partition: 1 }, { value: "b", partition: 1 }],
  });
  const joined = await t.call("POST", "/v1/groups/readers/members", { topics: ["g"] });
  assert.equal(joined.status, 200, JSON.stringify(joined.body));
  assert.equal(joined.body.generation >= 1, true);
  const committed = await t.call("POST", "/v1/groups/readers/offsets", {
    memberId: joined.body.memberId,
    generation: joined.body.generation,
    offsets: [{ topic: "g", partition: 1, offset: 1 }],
  });
  assert.equal(committed.status, 200, JSON.stringify(committed.body));
  const lag = await t.call("GET", "/v1/groups/readers/offsets");
  const p1 = lag.body.offsets.find((o: { partition: number }) => o.partition === 1);
  assert.equal(p1.logEndOffset, 2, "the log end offset comes from the broker's partition");
  assert.equal(p1.lag, 1);
  const unknown = await t.call("POST", "/v1/groups/other/members", { topics: ["missing"] });
  assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
});
