/**
 * The controller lease across processes: one broker is controller; when it dies another
 * takes over within a few seconds, and `rill cluster status` shows who is alive and who
 * is controller.
 */
import assert from "node:assert/strict";
import { Cluster } from "./_cluster.ts";

const REPO = new URL("../../", import.meta.url).pathname;

async function clusterJson(url: string) {
  return await (await fetch(`${url}/v1/cluster`)).json();
}

Deno.test("placement spreads leaders; the controller dies: another broker takes the lease; cluster status shows it", async () => {
  await using cluster = await Cluster.start(3);
  await cluster.explain(async () => {
    // Placement: distinct replicas, leaders spread evenly; more replicas than live brokers
    // is refused and creates nothing.
    const ps = await cluster.createTopic("spread", 3, 3);
    assert.deepEqual(ps.map((p) => p.leader).sort(), [1, 2, 3]);
    for (const p of ps) assert.deepEqual([...p.replicas].sort(), [1, 2, 3]);
    const refused = await fetch(`${cluster.url(1)}/v1/topics`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "too-wide", replicationFactor: 4 }),
    });
    assert.equal(refused.status, 400);
    const body = await refused.json();
    assert.equal(body.error.code, "INVALID_REPLICATION_FACTOR");
    assert.match(body.error.message, /larger than the 3 live broker\(s\)/);
    const missing = await fetch(`${cluster.url(1)}/v1/topics/too-wide`);
    await missing.body?.cancel();
    assert.equal(missing.status, 404);

    const first = (await clusterJson(cluster.url(3))).controllerId;
    assert.ok([1, 2, 3].includes(first));
    await cluster.kill(first);
    const other = [1, 2, 3].find((id) => id !== first)!;
    const deadline = Date.now() + 15_000;
    let status = await clusterJson(cluster.url(other));
    const dead = (s: { brokers: { id: number; alive: boolean }[] }) =>
      !s.brokers.find((b) => b.id === first)!.alive;
    while (
      Date.now() < deadline &&
      (status.controllerId === first || status.controllerId === null || !dead(status))
    ) {
      await new Promise((r) => setTimeout(r, 50));
      status = await clusterJson(cluster.url(other));
    }
    assert.notEqual(status.controllerId, first);
    assert.ok([1, 2, 3].includes(status.controllerId));
    assert.equal(status.brokers.find((b: { id: number }) => b.id === first).alive, false);

    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${REPO}cli.ts`, "cluster", "status", "--broker", cluster.url(other)],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(text, new RegExp(`Controller: ${status.controllerId}\\t`));
    assert.match(text, new RegExp(`Broker: ${first}\\tRole: broker\\tURL: \\S+\\tAlive: no`));
  });
});
