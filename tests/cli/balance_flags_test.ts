import assert from "node:assert/strict";
import { parseReplicationArgs } from "../../src/cli/broker_replication.ts";
import { UsageError } from "../../src/cli/common.ts";
import { run as clusterCli } from "../../src/cli/cluster.ts";

Deno.test("rill broker: the balancing flags set the broker config and the rack", () => {
  const r = parseReplicationArgs({
    "auto-leader-rebalance-enable": "false",
    "leader-imbalance-per-broker-percentage": "25",
    "leader-imbalance-check-interval-seconds": "2",
    "replica-replacement-delay-ms": "5000",
    "replication-throttle-bytes": "1048576",
    "max-concurrent-moves": "3",
    "max-concurrent-moves-per-broker": "2",
    rack: "eu-1a",
  });
  assert.deepEqual(r.config, {
    autoLeaderRebalanceEnable: false,
    leaderImbalancePerBrokerPercentage: 25,
    leaderImbalanceCheckIntervalMs: 2000,
    replicaReplacementDelayMs: 5000,
    replicationThrottleBytes: 1048576,
    maxConcurrentMoves: 3,
    maxConcurrentMovesPerBroker: 2,
  });
  assert.equal(r.rack, "eu-1a");
});

Deno.test("rill broker: bad balancing flags are usage errors", () => {
  for (
    const bad of [
      { "auto-leader-rebalance-enable": "yes" },
      { "leader-imbalance-per-broker-percentage": "101" },
      { "leader-imbalance-check-interval-seconds": "0" },
      { "replica-replacement-delay-ms": "-1" },
      { "replication-throttle-bytes": "1.5" },
      { "max-concurrent-moves": "0" },
      { "max-concurrent-moves-per-broker": "0" },
      { rack: "has space" },
    ]
  ) {
    assert.throws(() => parseReplicationArgs(bad), UsageError, JSON.stringify(bad));
  }
});

Deno.test("rill cluster: bad command lines are usage errors before any request", async () => {
  const io = {
    out: () => Promise.resolve(),
    err: () => Promise.resolve(),
    stdin: () => new ReadableStream<Uint8Array>(),
  };
  const url = ["--broker", "http://127.0.0.1:9"];
  await assert.rejects(clusterCli(["rebalance", "--dry-run", "--execute", ...url], io), UsageError);
  await assert.rejects(clusterCli(["decommission", ...url], io), /needs --id/);
  await assert.rejects(clusterCli(["shrink", ...url], io), /Unknown subcommand/);
  await assert.rejects(clusterCli(["recommission", ...url], io), /recommission needs --id/);
  await assert.rejects(clusterCli(["recommission", "--id", "x", ...url], io), UsageError);
  await assert.rejects(
    clusterCli(["cancel-moves", "--id", "2", ...url], io),
    /cancel-moves takes no --id/,
  );
  await assert.rejects(
    clusterCli(["recommission", "--id", "2", "--execute", ...url], io),
    /takes no --execute/,
  );
});
