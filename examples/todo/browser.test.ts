/**
 * The page in headless Chromium (Debian's, at /usr/bin/chromium or CHROMIUM; playwright-core never downloads one):
 * two browsers (contexts) on two instances, an engine and a worker, add, toggle, rename and delete and see each
 * other live; one drops its socket for a few seconds during a burst of changes and catches up on exactly what it
 * missed (no duplicate, same order). Screenshots at desktop and phone widths, light and dark, go to
 * test-output/screenshots/ (git-ignored). Without Chromium the test fails under CI=true and is skipped loudly
 * otherwise.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { requireService } from "../../test/support/services.ts";
import type { RunningTodo } from "./app.ts";
import {
  instance,
  type Logged,
  fileVhost,
  removeFileVhost,
  PhoenixClient,
  removeDir,
  requireBroker,
  tempDir,
  type Vhost,
  vhostsAvailable,
} from "./todo-fixture.ts";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = join(import.meta.dirname, "..", "..", "test-output", "screenshots");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const WAIT_MS = 10_000;

type ListItem = { title: string; done: boolean };

async function listed(page: Page): Promise<ListItem[]> {
  return page.$$eval("li.item", (rows) =>
    rows.map((row) => ({
      title: (row.querySelector(".title") as unknown as { textContent: string; value?: string }).textContent,
      done: row.getAttribute("data-done") === "true",
    })),
  );
}

async function add(page: Page, title: string): Promise<void> {
  await page.getByLabel("New todo").fill(title);
  await page.getByLabel("New todo").press("Enter");
  await page.locator("li.item .title", { hasText: title }).first().waitFor({ timeout: WAIT_MS });
}

after(() => removeFileVhost());

describe("the page in two browsers on two instances", () => {
  let vhost: Vhost | null = null;
  let dir: string;
  let engine: RunningTodo & { logs: Logged };
  let worker: RunningTodo & { logs: Logged };
  let browser: Browser | null = null;
  const errors: string[] = [];

  const open = async (url: string): Promise<Page> => {
    const context = await browser!.newContext({ viewport: DESKTOP, colorScheme: "light" });
    const page = await context.newPage();
    page.on("pageerror", (error) => errors.push(error.message));
    page.on("console", (message) => message.type() === "error" && errors.push(message.text()));
    await page.goto(url);
    await page.locator('.status[data-state="live"]').waitFor({ timeout: WAIT_MS });
    return page;
  };

  before(async () => {
    if (!(await vhostsAvailable()) || !existsSync(CHROMIUM)) return;
    vhost = await fileVhost();
    dir = tempDir();
    engine = await instance({ mode: "engine", amqpUrl: vhost.url, database: `${dir}/ztd.db` });
    worker = await instance({ mode: "worker", amqpUrl: vhost.url });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
    });
  });
  after(async () => {
    await browser?.close();
    await worker?.stop();
    await engine?.stop();
    if (dir) removeDir(dir);
  });

  it("add, toggle, rename, delete: each browser sees the other's changes live", async (t) => {
    if (!(await requireBroker(t))) return;
    if (!requireService(t, `Chromium at ${CHROMIUM}`, browser !== null)) return;
    const [a, b] = [await open(engine.url), await open(worker.url)];
    assert.equal(await a.locator(".mode").textContent(), "engine");
    assert.equal(await b.locator(".mode").textContent(), "worker");
    await add(a, "Buy milk");
    await b.locator("li.item .title", { hasText: "Buy milk" }).waitFor({ timeout: WAIT_MS });
    await add(b, "Walk the dog");
    await a.locator("li.item .title", { hasText: "Walk the dog" }).waitFor({ timeout: WAIT_MS });
    // The box follows the list, which changes when the change is applied (as the seed's page): click, then wait.
    await b.getByLabel("Done: Buy milk").click();
    await b.locator('li.item[data-done="true"] .title', { hasText: "Buy milk" }).waitFor({ timeout: WAIT_MS });
    await a.locator('li.item[data-done="true"] .title', { hasText: "Buy milk" }).waitFor({ timeout: WAIT_MS });
    await a.locator("li.item .title", { hasText: "Walk the dog" }).click();
    await a.getByLabel("Rename Walk the dog").fill("Walk the cat");
    await a.getByLabel("Rename Walk the dog").press("Enter");
    await b.locator("li.item .title", { hasText: "Walk the cat" }).waitFor({ timeout: WAIT_MS });
    await b.getByLabel("Delete Buy milk").click();
    await a.locator("li.item .title", { hasText: "Buy milk" }).waitFor({ state: "detached", timeout: WAIT_MS });
    assert.deepEqual(await listed(a), [{ title: "Walk the cat", done: false }]);
    assert.deepEqual(await listed(b), await listed(a));
    // A refusal is shown, not swallowed (the seed's page stayed silent).
    await b.locator("li.item .title", { hasText: "Walk the cat" }).click();
    await b.getByLabel("Rename Walk the cat").fill("   ");
    await b.getByLabel("Rename Walk the cat").press("Enter");
    await b.getByRole("alert").filter({ hasText: "can't be blank" }).waitFor({ timeout: WAIT_MS });
    assert.deepEqual(errors, []);
    await a.context().close();
    await b.context().close();
  });

  it("a browser that drops its socket during a burst catches up on exactly what it missed", async (t) => {
    if (!(await requireBroker(t))) return;
    if (!requireService(t, `Chromium at ${CHROMIUM}`, browser !== null)) return;
    const [a, b] = [await open(engine.url), await open(worker.url)];
    const writer = await PhoenixClient.open(engine.url);
    await writer.join();
    const burst = (async () => {
      for (let i = 0; i < 30; i++) {
        const reply = await writer.push("insert", { data: { title: `burst ${i}`, done: i % 3 === 0 } });
        if (i % 5 === 4) await writer.push("update", { data: { id: reply.payload.response.data.id, done: true } });
        await new Promise((resolve) => setTimeout(resolve, 60));
      }
    })();
    await b.locator("li.item .title", { hasText: "burst 2" }).waitFor({ timeout: WAIT_MS });
    await b.evaluate(() => (globalThis as any).ztd.socket.disconnect());
    await b.locator('.status[data-state="offline"]').waitFor({ timeout: WAIT_MS });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const missedFrom = await b.evaluate(() => (globalThis as any).ztd.position().offset);
    await b.evaluate(() => (globalThis as any).ztd.socket.connect());
    await burst;
    writer.close();
    await b.locator("li.item .title", { hasText: "burst 29" }).waitFor({ timeout: WAIT_MS });
    await a.locator("li.item .title", { hasText: "burst 29" }).waitFor({ timeout: WAIT_MS });
    const expected = (await engine.engine!.snapshot()).items.map(({ title, done }) => ({ title, done }));
    await b.waitForFunction(
      (n) => (globalThis as any).document.querySelectorAll("li.item").length === n,
      expected.length,
      {
        timeout: WAIT_MS,
      },
    );
    assert.deepEqual(await listed(b), expected);
    assert.deepEqual(await listed(a), expected);
    const position = await b.evaluate(() => (globalThis as any).ztd.position().offset);
    assert.ok(position > missedFrom, "the page's position moved on past what it missed");
    assert.deepEqual(errors, []);

    // Screenshots of the engine's page, desktop and phone, light and dark.
    mkdirSync(SHOTS, { recursive: true });
    for (const [width, viewport] of [
      ["desktop", DESKTOP],
      ["phone", PHONE],
    ] as const) {
      for (const scheme of ["light", "dark"] as const) {
        await a.setViewportSize(viewport);
        await a.emulateMedia({ colorScheme: scheme });
        await a.screenshot({ path: join(SHOTS, `todo-${width}-${scheme}.png`), fullPage: width === "phone" });
      }
    }
    await a.context().close();
    await b.context().close();
  });
});
