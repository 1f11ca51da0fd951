/**
 * The web console seen through a real browser: Debian's Chromium driven by playwright-core.
 * Used by tests/http/console_test.ts (which asserts what a person sees) and by
 * `deno task screenshots` (tests/_helpers/console_screenshots.ts, which saves every page).
 *
 * @module
 */
import { type Browser, chromium, type Page } from "playwright-core";
import { Rill } from "../../mod.ts";

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM = "/usr/bin/chromium";

/**
 * Starts headless Chromium with the flags this machine needs (no sandbox as root, and no
 * background connections to the outside, which the closed network refuses).
 *
 * @returns the browser
 * @throws {Error} naming the package to install when Chromium is missing
 */
export async function launchChromium(): Promise<Browser> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`);
  }
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** What {@linkcode seedConsoleData} made. */
export interface ConsoleData {
  /** a topic with 3 partitions */
  topic: string;
  /** a consumer group that committed offsets on it */
  group: string;
  /** the partition holding the record whose value is markup */
  markupPartition: number;
  /** that value */
  markup: string;
}

/**
 * Makes something to look at: a topic with JSON, text, markup and binary values, and a
 * consumer group with committed offsets (so it has lag).
 *
 * @param url the broker
 * @param auth an API key token, or undefined without --auth
 * @returns the names
 */
export async function seedConsoleData(url: string, auth?: string): Promise<ConsoleData> {
  const rill = new Rill({ brokers: [url], auth, clientId: "console-tour" });
  const topic = "orders";
  const group = "billing";
  await rill.admin().createTopics({ topics: [{ topic, numPartitions: 3 }] });
  const markup = `<img src=x onerror="document.title='pwned'">`;
  const producer = rill.producer();
  const sent = await producer.send({
    topic,
    messages: [
      {
        key: "alice",
        value: JSON.stringify({ total: 42, items: ["tea"] }),
        headers: { trace: "t-1" },
      },
      { key: "bob", value: "plain text" },
      { key: "mallory", value: markup, partition: 1 },
      { key: "bin", value: new Uint8Array([0xff, 0x00, 0xfe, 0x01]), partition: 2 },
      ...Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `event ${i}` })),
    ],
  });
  await producer.disconnect();
  // The group committed half of each partition: its lag is the other half.
  const ends = await rill.admin().fetchTopicOffsets(topic);
  const res = await fetch(`${url}/v1/groups/${group}/offsets`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(auth ? { authorization: `Bearer ${auth}` } : {}),
    },
    body: JSON.stringify({
      offsets: ends.map((e) => ({ topic, partition: e.partition, offset: Math.floor(e.high / 2) })),
    }),
  });
  if (!res.ok) throw new Error(`commit failed: ${res.status} ${await res.text()}`);
  const markupPartition = sent[2].partition;
  return { topic, group, markupPartition, markup };
}

/**
 * Opens a console page (`/ui#<route>`) in a fresh load and waits until it is drawn.
 *
 * @param page the tab
 * @param base the broker URL
 * @param route the fragment route, e.g. "/topics/orders"
 */
export async function openConsole(page: Page, base: string, route: string): Promise<void> {
  await page.goto("about:blank");
  await page.goto(`${base}/ui#${route}`);
  await page.locator("main[data-ready]").waitFor();
}

/**
 * Pastes an API key into the console's key box, as a person would.
 *
 * @param page the tab, showing the console
 * @param token the key
 */
export async function useKey(page: Page, token: string): Promise<void> {
  await page.getByLabel("API key").fill(token);
  await page.getByRole("button", { name: "Use key" }).click();
  await page.locator("[data-who]", { hasText: "superuser" }).waitFor();
}

/** Every page of the console, by name, for a tour of {@linkcode seedConsoleData}'s data. */
export function consolePages(data: ConsoleData): [string, string][] {
  const t = encodeURIComponent(data.topic);
  return [
    ["cluster", "/cluster"],
    ["topics", "/topics"],
    ["topic", `/topics/${t}`],
    ["messages", `/topics/${t}/messages?partition=${data.markupPartition}&offset=0`],
    ["messages-hex", `/topics/${t}/messages?partition=2&offset=0&format=hex`],
    ["tail", `/topics/${t}/tail?partition=0`],
    ["produce", `/topics/${t}/produce`],
    ["groups", "/groups"],
    ["group", `/groups/${encodeURIComponent(data.group)}`],
    ["security", "/security"],
  ];
}
