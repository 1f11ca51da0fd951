/**
 * The web console in a real browser (Debian's Chromium through playwright-core) against a
 * broker process run with --auth: what a person sees on every page, that the API key stays
 * in sessionStorage (never a cookie or a URL), that record text is shown as text, and that
 * the pages work under their strict Content-Security-Policy.
 */
import assert from "node:assert/strict";
import { startBroker } from "../_helpers/broker_process.ts";
import { spawnLines } from "../_helpers/child_lines.ts";
import { cli } from "../_helpers/cli_in_process.ts";
import {
  consolePages,
  launchChromium,
  openConsole,
  seedConsoleData,
  useKey,
} from "../_helpers/console_tour.ts";
import { Rill } from "../../mod.ts";

Deno.test("the web console shows a secured cluster's topics, messages, groups and keys", async (t) => {
  await using broker = await startBroker({ extraArgs: ["--auth"] });
  const boot = await cli("auth", "bootstrap", "--data", broker.dataDir);
  assert.equal(boot.code, 0, boot.err);
  const admin = boot.out.trim();
  const data = await seedConsoleData(broker.url, admin);
  const pages = new Map(consolePages(data));
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    const cspReports: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) cspReports.push(m.text());
    });
    let dialogs = 0;
    page.on("dialog", (d) => {
      dialogs++;
      void d.dismiss();
    });

    await t.step("the shell is served with a strict CSP and asks for a key", async () => {
      const res = await fetch(`${broker.url}/ui`);
      assert.equal(res.status, 200);
      const csp = res.headers.get("content-security-policy") ?? "";
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      await res.body?.cancel();
      await openConsole(page, broker.url, "/cluster");
      await page.getByRole("alert").filter({ hasText: "UNAUTHENTICATED" }).waitFor();
      assert.match(await page.getByRole("alert").innerText(), /Paste an API key/);
    });

    await t.step("cluster: the broker, alive, and the controller", async () => {
      await useKey(page, admin);
      await page.getByRole("heading", { name: "Cluster" }).waitFor();
      await page.getByText("Brokers: 1 of 1 alive").waitFor();
      const row = page.locator("tr", { hasText: broker.url });
      assert.match(await row.innerText(), /broker \(controller\)\s+alive\s+ok/);
    });

    await t.step("the key is kept in sessionStorage only: no cookie, not in the URL", async () => {
      assert.equal(await page.evaluate(() => sessionStorage.getItem("rill.console.apiKey")), admin);
      assert.deepEqual(await context.cookies(), []);
      assert.ok(!page.url().includes(admin.split(".")[1]));
    });

    await t.step("topics: the topic with its record count", async () => {
      await openConsole(page, broker.url, pages.get("topics")!);
      const row = page.locator("tbody tr", { hasText: data.topic });
      assert.match(await row.innerText(), /orders\s+3\s+1\s+24\s/);
    });

    await t.step("topic: each partition's leader, ISR and offsets", async () => {
      await openConsole(page, broker.url, pages.get("topic")!);
      const ends = await new Rill({ brokers: [broker.url], auth: admin }).admin()
        .fetchTopicOffsets(data.topic);
      for (const e of ends) {
        const row = page.locator("tbody tr").nth(e.partition);
        const cells = await row.locator("td").allInnerTexts();
        assert.deepEqual(cells.slice(0, 8), [
          String(e.partition),
          "1",
          "1",
          "1",
          String(e.low),
          String(e.high),
          String(e.high),
          "in sync",
        ]);
      }
    });

    await t.step(
      "messages: markup in a value is shown as text, bytes as hex, paging from an offset",
      async () => {
        await openConsole(page, broker.url, pages.get("messages")!);
        await page.getByText(data.markup, { exact: true }).waitFor();
        assert.equal(await page.title(), "Rill console", "the markup did not run");
        await openConsole(page, broker.url, pages.get("messages-hex")!);
        await page.getByText("ff 00 fe 01", { exact: true }).waitFor();
        // Paging: from offset 0 of a partition with more records, "Newer" leads on.
        const p0 = `/topics/${data.topic}/messages?partition=0&offset=0`;
        await openConsole(page, broker.url, p0);
        const first = await page.locator("tbody tr td").first().innerText();
        assert.equal(first, "0");
      },
    );

    await t.step("produce: a record typed into the form is stored where it says", async () => {
      await openConsole(page, broker.url, pages.get("produce")!);
      await page.getByLabel("Key (optional)").fill("from-the-console");
      await page.getByLabel("Partition (optional)").fill("2");
      await page.getByLabel("Value", { exact: true }).fill("typed by a person");
      await page.getByRole("button", { name: "Produce" }).click();
      const status = await page.getByRole("status").innerText();
      const m = /Stored in partition (\d+) at offset (\d+)\./.exec(status);
      assert.ok(m, status);
      assert.equal(m[1], "2");
      const res = await fetch(
        `${broker.url}/v1/topics/${data.topic}/partitions/2/records?offset=${m[2]}`,
        { headers: { authorization: `Bearer ${admin}` } },
      );
      const body = await res.json();
      assert.equal(body.records[0].value, "typed by a person");
      assert.equal(body.records[0].key, "from-the-console");
    });

    await t.step("live tail: a record produced now appears", async () => {
      await openConsole(page, broker.url, pages.get("tail")!);
      await page.locator('[data-tail-status="live"]').waitFor();
      const producer = new Rill({ brokers: [broker.url], auth: admin }).producer();
      await producer.send({
        topic: data.topic,
        messages: [{ key: "late", value: "arrived while watching", partition: 0 }],
      });
      await producer.disconnect();
      await page.locator("tbody tr", { hasText: "arrived while watching" }).waitFor();
    });

    await t.step("groups: the group's lag per partition and in total", async () => {
      await openConsole(page, broker.url, pages.get("groups")!);
      await page.locator("tbody tr", { hasText: data.group }).waitFor();
      await openConsole(page, broker.url, pages.get("group")!);
      const offsets = await (await fetch(`${broker.url}/v1/groups/${data.group}/offsets`, {
        headers: { authorization: `Bearer ${admin}` },
      })).json();
      let total = 0;
      for (const o of offsets.offsets) {
        total += o.lag;
        const row = page.locator("tbody tr", { hasText: data.topic }).nth(o.partition);
        const cells = await row.locator("td").allInnerTexts();
        assert.deepEqual(cells.slice(1, 5), [
          String(o.partition),
          String(o.offset),
          String(o.logEndOffset),
          String(o.lag),
        ]);
      }
      assert.ok(total > 0);
      await page.getByText(`Total lag: ${total}`).waitFor();
      await page.locator("svg.chart").waitFor();
    });

    await t.step("security: keys and ACLs, a new key's token shown once", async () => {
      await openConsole(page, broker.url, pages.get("security")!);
      await page.getByText("Signed in as admin (superuser).").waitFor();
      await page.getByLabel("Principal").first().fill("reader");
      await page.getByRole("button", { name: "Create key" }).click();
      const token = await page.locator("[data-new-token]").innerText();
      assert.match(token, /^rk_[0-9a-f]{16}\./);
      const who = await fetch(`${broker.url}/v1/auth/whoami`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal((await who.json()).principal, "reader");
      const aclForm = page.locator("form", { hasText: "Allow" });
      await aclForm.getByLabel("Principal").fill("reader");
      await aclForm.getByLabel("Name").fill(data.topic);
      await aclForm.getByLabel("Operation").selectOption("read");
      await aclForm.getByRole("button", { name: "Allow" }).click();
      await page.locator("tbody tr", { hasText: "reader" }).filter({ hasText: "read" }).last()
        .waitFor();
    });

    await t.step("after Forget, the pages ask for a key again", async () => {
      await page.getByRole("button", { name: "Forget" }).click();
      await page.getByRole("alert").filter({ hasText: "UNAUTHENTICATED" }).waitFor();
    });

    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspReports, []);
    assert.equal(dialogs, 0);
  } finally {
    await browser.close();
  }
});

Deno.test("rill console serves the same pages on its own address for a broker elsewhere", async () => {
  await using broker = await startBroker();
  await using consoleServer = spawnLines(new URL("../../cli.ts", import.meta.url).pathname, [
    "console",
    "--broker",
    broker.url,
    "--listen",
    "127.0.0.1:0",
  ]);
  const line = await consoleServer.waitLine(/^rill console listening on /);
  const base = /listening on (http:\/\/\S+)\/ui/.exec(line)![1];
  assert.notEqual(base, broker.url);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await openConsole(page, base, "/cluster");
    // The pages come from the console's address; the data from the broker's API.
    const row = page.locator("tr", { hasText: broker.url });
    assert.match(await row.innerText(), /alive\s+ok/);
    await page.getByText("no key needed").waitFor();
  } finally {
    await browser.close();
  }
});
