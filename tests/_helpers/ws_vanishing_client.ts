/**
 * Child process of the broker stop test: a mod.ts producer sends one record to
 * `Deno.args[1]` partition 0 of the broker at `Deno.args[0]` over its WebSocket connection,
 * prints `sent <offset>`, then exits without closing the connection (the peer vanishes: the
 * broker reads the end of its TCP stream, with no WebSocket close frame).
 *
 * @module
 */
import { Rill } from "../../mod.ts";

const [url, topic] = Deno.args;
const producer = new Rill({ brokers: [url], transport: "ws" }).producer({ acks: 1 });
const [ack] = await producer.send({ topic, messages: [{ value: "x", partition: 0 }] });
console.log(`sent ${ack.offset}`);
Deno.exit(0);
