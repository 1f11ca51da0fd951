/**
 * A word-count streams application in its own process, for tests that SIGKILL it:
 *
 * `deno run -A streams_word_count_child.ts BROKER APP_ID INPUT OUTPUT GUARANTEE [bounded]`
 *
 * Prints `started` once it has joined, then `processed N` every 50 ms while it works and
 * `tasks P,P…` whenever its tasks change; with
 * `bounded` it runs as a batch job (stopAtEnd) and prints `finished` before exiting.
 *
 * @module
 */
import { Rill, Serdes, StreamsBuilder } from "../../mod.ts";

const [broker, applicationId, input, output, guarantee, mode] = Deno.args;
const encoder = new TextEncoder();
const say = (line: string) => Deno.stdout.writeSync(encoder.encode(line + "\n"));

const builder = new StreamsBuilder();
builder.stream<string | null, string>(input)
  .flatMapValues((line) => line.toLowerCase().split(/\W+/).filter((w) => w !== ""))
  .groupBy((_key, word) => word)
  .count({ name: "counts" })
  .toStream()
  .to(output, { valueSerde: Serdes.number });

const app = new Rill({ brokers: [broker] }).streams({
  applicationId,
  processingGuarantee: guarantee as "at_least_once" | "exactly_once",
  fromBeginning: true,
  stopAtEnd: mode === "bounded",
  commitIntervalMs: 200,
  sessionTimeoutMs: 3000,
}).build(builder);
await app.start();
say("started");
let tasks = "";
const timer = setInterval(() => {
  const m = app.metrics();
  say(`processed ${m.processed}`);
  if (m.tasks.join(",") !== tasks) say(`tasks ${tasks = m.tasks.join(",")}`);
}, 50);
await app.finished();
clearInterval(timer);
say("finished");
