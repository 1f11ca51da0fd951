/**
 * `deno task screenshots [DIR]`: starts a broker with --auth in a temporary directory, fills
 * it with a topic, records and a consumer group, and saves a screenshot of every page of the
 * web console to DIR (default `dist/screenshots/`), for a reviewer to look at.
 *
 * @module
 */
import { startBroker } from "./broker_process.ts";
import { cli } from "./cli_in_process.ts";
import {
  consolePages,
  launchChromium,
  openConsole,
  seedConsoleData,
  useKey,
} from "./console_tour.ts";

const dir = Deno.args[0] ?? new URL("../../dist/screenshots/", import.meta.url).pathname;
await Deno.mkdir(dir, { recursive: true });
await using broker = await startBroker({ extraArgs: ["--auth"] });
const boot = await cli("auth", "bootstrap", "--data", broker.dataDir);
if (boot.code !== 0) throw new Error(boot.err);
const admin = boot.out.trim();
const data = await seedConsoleData(broker.url, admin);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await openConsole(page, broker.url, "/cluster");
  await page.screenshot({ path: `${dir}/00-no-key.png` });
  await useKey(page, admin);
  for (const [i, [name, route]] of consolePages(data).entries()) {
    await openConsole(page, broker.url, route);
    if (name === "group") {
      // The page refreshes itself every 5 s: two refreshes give the lag chart a line.
      for (let n = 0; n < 2; n++) {
        const drawn = await page.locator("main").getAttribute("data-ready");
        await page.locator(`main[data-ready]:not([data-ready="${drawn}"])`).waitFor();
      }
    }
    if (name === "tail") await page.locator('[data-tail-status="live"]').waitFor();
    const path = `${dir}/${String(i + 1).padStart(2, "0")}-${name}.png`;
    await page.screenshot({ path, fullPage: true });
    console.log(path);
  }
} finally {
  await browser.close();
}
