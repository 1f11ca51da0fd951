/**
 * A follower (observer) serves Kafka reads of the topics it copies: kcat pointed at the
 * follower sees it as the leader of its copies and reads what was produced to the leader
 * through Kafka; producing through the follower is refused (read-only).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Cluster } from "../replication/_cluster.ts";
import { KCAT, run } from "./_kafka.ts";

Deno.test({
  name: "kcat reads from an edge follower's Kafka listener; the follower is read-only",
  ignore: !KCAT,
  async fn() {
    await using cluster = await Cluster.start(1);
    await cluster.createTopic("edge", 2, 1);
    const follower = await cluster.startBroker(9, "follower", ["--topics", "edge"]);
    const leader = cluster.procs.get(1)!;
    const values = Array.from({ length: 20 }, (_, i) => `v${i}`);
    const p = await run("kcat", ["-b", leader.kafka!, "-P", "-t", "edge", "-p", "1"], {
      stdin: values.join("\n") + "\n",
    });
    assert.equal(p.code, 0, p.stderr);
    const meta = JSON.parse(
      (await run("kcat", ["-b", follower.kafka!, "-L", "-J", "-t", "edge"])).stdout,
    );
    assert.deepEqual(meta.brokers.map((b: { id: number }) => b.id), [9]);
    assert.deepEqual(meta.topics[0].partitions.map((x: { leader: number }) => x.leader), [9, 9]);
    // The copy catches up; kcat reads it from the follower (retrying until all 20 are there).
    let got: string[] = [];
    for (let i = 0; i < 50 && got.length < 20; i++) {
      const c = await run("kcat", [
        "-b",
        follower.kafka!,
        "-C",
        "-t",
        "edge",
        "-p",
        "1",
        "-o",
        "beginning",
        "-e",
        "-f",
        "%s\n",
      ]);
      got = c.stdout.split("\n").filter((l) => l !== "");
      if (got.length < 20) await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(got, values);
    const w = await run("kcat", [
      "-b",
      follower.kafka!,
      "-P",
      "-t",
      "edge",
      "-X",
      "message.timeout.ms=2000",
    ], { stdin: "nope\n" });
    assert.notEqual(w.code, 0, "producing through the follower fails");
  },
});
