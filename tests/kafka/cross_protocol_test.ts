/**
 * One cluster, two protocols: records produced by kcat through the Kafka listener are read
 * by `rill consume` and the mod.ts client with the same keys, values, headers and
 * timestamps; records produced by the mod.ts client over HTTP are read by kcat and
 * kafkajs; a group is used by one protocol at a time.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { Rill } from "../../mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { createTopic, KCAT, run, spawn } from "./_kafka.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

Deno.test({
  name:
    "kcat -> rill consume and mod.ts; mod.ts -> kcat and kafkajs: same keys, values, headers, timestamps",
  ignore: !KCAT,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using broker = await startBroker();
    await createTopic(broker.url, "x", 1);
    const p = await run("kcat", ["-b", broker.kafka!, "-P", "-t", "x", "-K:", "-H", "h=1"], {
      stdin: "a:one\nb:two\n",
    });
    assert.equal(p.code, 0, p.stderr);
    const k = await run("kcat", [
      "-b",
      broker.kafka!,
      "-C",
      "-t",
      "x",
      "-o",
      "beginning",
      "-e",
      "-f",
      "%k|%s|%h|%T\n",
    ]);
    const fromKcat = k.stdout.trim().split("\n");
    // rill consume (the CLI over HTTP)
    const c = await run(Deno.execPath(), [
      "run",
      "-A",
      CLI,
      "consume",
      "x",
      "--from-beginning",
      "--max-messages",
      "2",
      "--format",
      "json",
      "--broker",
      broker.url,
    ]);
    assert.equal(c.code, 0, c.stderr);
    const fromCli = c.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(
      fromCli.map((m) => `${m.key}|${m.value}|h=${m.headers.h}|${m.timestamp}`),
      fromKcat,
    );
    // mod.ts client
    const rill = new Rill({ brokers: [broker.url], clientId: "x" });
    const consumer = rill.consumer({ maxWaitMs: 500 });
    await consumer.assign([{ topic: "x", partition: 0, offset: "earliest" }]);
    const got: string[] = [];
    for await (const m of consumer) {
      got.push(`${m.keyString()}|${m.valueString()}|h=${m.headerString("h")}|${m.timestamp}`);
      if (got.length === 2) break;
    }
    await consumer.disconnect();
    assert.deepEqual(got, fromKcat);

    // The other way: mod.ts produces over HTTP, kcat and kafkajs read through Kafka.
    await createTopic(broker.url, "y", 1);
    const producer = rill.producer();
    const ts = 1_700_000_000_123;
    await producer.send({
      topic: "y",
      messages: [
        { key: "k1", value: "v1", headers: { trace: "t1" }, timestamp: ts },
        { key: "k2", value: "v2", headers: { trace: "t2" }, timestamp: ts + 1 },
      ],
    });
    await producer.disconnect();
    const ky = await run("kcat", [
      "-b",
      broker.kafka!,
      "-C",
      "-t",
      "y",
      "-o",
      "beginning",
      "-e",
      "-X",
      "check.crcs=true",
      "-f",
      "%k|%s|%h|%T\n",
    ]);
    assert.equal(ky.stdout, `k1|v1|trace=t1|${ts}\nk2|v2|trace=t2|${ts + 1}\n`);
    const kafka = new Kafka({ brokers: [broker.kafka!], logLevel: logLevel.NOTHING });
    const kc = kafka.consumer({ groupId: "kjs-y" });
    await kc.connect();
    await kc.subscribe({ topic: "y", fromBeginning: true });
    const seen: string[] = [];
    const done = Promise.withResolvers<void>();
    await kc.run({
      eachMessage: ({ message }) => {
        seen.push(
          `${message.key}|${message.value}|${message.headers!.trace}|${message.timestamp}`,
        );
        if (seen.length === 2) done.resolve();
        return Promise.resolve();
      },
    });
    await done.promise;
    await kc.disconnect();
    assert.deepEqual(seen, [`k1|v1|t1|${ts}`, `k2|v2|t2|${ts + 1}`]);
  },
});

Deno.test({
  name: "a group is used by one protocol at a time: INCONSISTENT_GROUP_PROTOCOL both ways",
  ignore: !KCAT,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using broker = await startBroker();
    await createTopic(broker.url, "z", 2);
    // A Rill member holds group "rg".
    const join = await fetch(`${broker.url}/v1/groups/rg/members`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ topics: ["z"], sessionTimeoutMs: 30000 }),
    });
    assert.equal(join.status, 200, await join.text());
    const kc = await run("kcat", ["-b", broker.kafka!, "-G", "rg", "z", "-e", "-d", "cgrp"], {
      timeoutMs: 8000,
    });
    assert.match(kc.stderr, /INCONSISTENT_GROUP_PROTOCOL|Inconsistent group protocol/i);
    // A kcat member holds group "kg": a Rill join is refused.
    await using member = spawn("kcat", ["-b", broker.kafka!, "-G", "kg", "z", "-u"]);
    await member.waitLine((l) => /rebalanced .*assigned/.test(l));
    const refused = await fetch(`${broker.url}/v1/groups/kg/members`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ topics: ["z"] }),
    });
    assert.equal(refused.status, 409);
    assert.equal((await refused.json()).error.code, "INCONSISTENT_GROUP_PROTOCOL");
    const d = await (await fetch(`${broker.url}/v1/groups/kg`)).json();
    assert.equal(d.members.length, 1);
  },
});
