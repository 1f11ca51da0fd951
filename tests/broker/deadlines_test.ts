/** Long-poll deadlines without a timer each (src/broker/deadlines.ts). */
import assert from "node:assert/strict";
import { Deadlines } from "../../src/broker/deadlines.ts";

Deno.test("deadlines: each fires once, not before its delay, in order; cancelled ones never", async () => {
  const deadlines = new Deadlines();
  const fired: string[] = [];
  const start = performance.now();
  const at = new Map<string, number>();
  let all!: () => void;
  const done = new Promise<void>((r) => all = r);
  const add = (name: string, ms: number) =>
    deadlines.add(ms, () => {
      fired.push(name);
      at.set(name, performance.now() - start);
      if (fired.length === 4) all();
    });
  add("a30", 30);
  const cancelled = [add("x30", 30), add("y60", 60)];
  add("b60", 60);
  add("c10", 10);
  // Many cancelled in the same queue (compacted) do not disturb the live ones.
  for (let i = 0; i < 3000; i++) add(`z${i}`, 30).cancel();
  add("d30", 30);
  for (const d of cancelled) d.cancel();
  cancelled[0].cancel(); // twice: no-op
  await done;
  assert.deepEqual(fired, ["c10", "a30", "d30", "b60"]);
  assert.ok(
    at.get("c10")! >= 9 && at.get("a30")! >= 29 && at.get("b60")! >= 59,
    JSON.stringify([...at]),
  );
});

Deno.test("deadlines: a queue emptied by cancels stops its timer, and a new deadline of that delay still fires", async () => {
  const deadlines = new Deadlines();
  deadlines.add(20, () => assert.fail("cancelled")).cancel();
  // The test would leak a timer (sanitizer) if the cancel left one armed; a later add works.
  await new Promise<void>((resolve) => deadlines.add(20, resolve));
});
