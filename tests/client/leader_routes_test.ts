/**
 * The client's partition routes (src/client/leader_routes.ts): where a partition's next
 * request goes after a broker refuses it.
 */
import assert from "node:assert/strict";
import { LeaderRoutes } from "../../src/client/leader_routes.ts";
import { RillError } from "../../src/protocol/errors.ts";

const A = "http://127.0.0.1:1001";
const B = "http://127.0.0.1:1002";
const refusal = (leaderUrl: string | null) =>
  new RillError("NOT_LEADER_OR_FOLLOWER", "not the leader", { leaderId: 2, leaderUrl });

Deno.test("a refusal naming another leader routes there; one naming the refusing broker itself goes back to the bootstrap brokers", () => {
  const routes = new LeaderRoutes();
  const route = routes.keyOf("GET", "/v1/topics/t/partitions/4/records")!;
  assert.equal(routes.base(route), undefined, "bootstrap until a broker names the leader");
  assert.equal(routes.learn(route, refusal(`${B}/`), A), true, "resend at once to B");
  assert.equal(routes.base(route), B);
  // B's metadata is behind a leader move: it refuses and names itself. Asking it again would
  // get the same answer until its metadata catches up.
  assert.equal(routes.learn(route, refusal(B), B), false, "not resent at once");
  assert.equal(routes.base(route), undefined, "the retry goes to the bootstrap brokers");
  // No leader named: bootstrap as well.
  routes.learn(route, refusal(A), B);
  assert.equal(routes.base(route), A);
  assert.equal(routes.learn(route, refusal(null), A), false);
  assert.equal(routes.base(route), undefined);
});
