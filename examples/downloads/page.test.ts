/**
 * The page in headless Chromium (the Debian package at /usr/bin/chromium, or CHROMIUM; playwright-core never
 * downloads a browser here), against two real node processes on one SQLite file: request a download, watch the card
 * go through its states, refresh on the other node mid-flight (the card is there at once and goes on live), download
 * the PDF, dismiss it; the new-version notice on the page whose version differs and not on the other. Screenshots at
 * desktop and phone width, light and dark, go to $DOWNLOADS_SCREENSHOTS (default $TMPDIR/downloads-screenshots).
 * Without Chromium the test fails under CI=true and is skipped loudly otherwise.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import pino from "pino";
import { type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import { Conveyor } from "../../src/index.ts";
import { requireService } from "../../test/support/services.ts";
import { deriveKey } from "./session.ts";
import { Nodes, SECRET } from "./harness-fixture.ts";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = process.env.DOWNLOADS_SCREENSHOTS ?? join(tmpdir(), "downloads-screenshots");
const WAIT_MS = 15_000;

const nodes = new Nodes();
let context: BrowserContext | null = null;
const profile = mkdtempSync(join(tmpdir(), "downloads-chromium-"));
after(async () => {
  await context?.close();
  await nodes.close();
  rmSync(profile, { recursive: true, force: true });
});

type Shot = { width: number; height: number; scheme: "light" | "dark" };
const VIEWS: Record<string, Shot> = {
  "desktop-light": { width: 1280, height: 820, scheme: "light" },
  "desktop-dark": { width: 1280, height: 820, scheme: "dark" },
  "phone-light": { width: 390, height: 844, scheme: "light" },
  "phone-dark": { width: 390, height: 844, scheme: "dark" },
};

/** Screenshots of `page` as it is, in every view, then back to the desktop in light. */
async function shoot(page: Page, name: string): Promise<void> {
  for (const [view, { width, height, scheme }] of Object.entries(VIEWS)) {
    await page.setViewportSize({ width, height });
    await page.emulateMedia({ colorScheme: scheme, reducedMotion: "reduce" });
    await page.screenshot({ path: join(SHOTS, `${name}-${view}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 820 });
  await page.emulateMedia({ colorScheme: "light", reducedMotion: "no-preference" });
}

async function open(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForFunction(() => (globalThis as any).downloadsPage?.states.includes("live"), null, {
    timeout: WAIT_MS,
  });
}

const card = (page: Page) => page.locator("#download .card");
const text = async (locator: Locator) => (await locator.textContent()) ?? "";

test("the page: request, watch it live, refresh on another node, download the PDF, the version notice", async (t) => {
  if (!requireService(t, "Chromium", existsSync(CHROMIUM))) return;
  mkdirSync(SHOTS, { recursive: true });
  const dataDir = nodes.tempDir();
  const env = {
    DATA_DIR: dataDir,
    DOWNLOAD_START_MS: "300",
    DOWNLOAD_PROCESS_MS: "300",
    DOWNLOAD_READY_MS: "4000",
    DOWNLOAD_TTL_MS: "60000",
  };
  const a = await nodes.start("node-a", { ...env, APP_VERSION: "1.0.0" });
  const b = await nodes.start("node-b", { ...env, APP_VERSION: "2.0.0" });
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 820 },
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
  const errors: string[] = [];
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });

  await open(page, a.url);
  await shoot(page, "1-idle");
  assert.equal(await card(page).getAttribute("data-state"), "none");
  await page.getByRole("button", { name: "Download PDF" }).click();
  await card(page).and(page.locator("[data-state=pending]")).waitFor({ timeout: WAIT_MS });
  const id = await card(page).getAttribute("data-id");
  assert.match(id!, /^[A-Za-z0-9_-]{10}$/);
  assert.match(await text(card(page)), /Starting download request/);
  await card(page).and(page.locator("[data-state=processing]")).waitFor({ timeout: WAIT_MS });
  await page.locator(".pct", { hasText: /^(20|30)%$/ }).waitFor({ timeout: WAIT_MS });
  assert.match(await text(card(page)), /Generating file\.\.\./);
  assert.match(await text(card(page)), /node-a/);
  await shoot(page, "2-processing");

  // A refresh that lands on the other node: the card is in the page as served, and goes on live from there.
  await page.goto(b.url);
  assert.equal(await card(page).getAttribute("data-state"), "processing", "rendered by node B at once");
  assert.equal(await card(page).getAttribute("data-id"), id);
  assert.match(await text(page.locator(".meta")), /node-b/);
  await page.waitForFunction(() => (globalThis as any).downloadsPage?.states.includes("live"), null, {
    timeout: WAIT_MS,
  });
  await card(page).and(page.locator("[data-state=ready]")).waitFor({ timeout: WAIT_MS });
  assert.match(await text(card(page)), /File generated with success/);
  await shoot(page, "3-ready");

  const link = page.getByRole("link", { name: "Click me to download the file" });
  assert.equal(await link.getAttribute("href"), `/downloads/${id}.pdf`);
  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  assert.equal(download.suggestedFilename(), `${id}.pdf`);
  const file = readFileSync((await download.path())!);
  assert.equal(file.subarray(0, 8).toString("latin1"), "%PDF-1.4");
  assert.ok(file.toString("latin1").includes(`(Download ${id})`));

  // The version notice: published as the cluster observer would, it shows on the page of version 1.0.0 only.
  const other = await context.newPage();
  other.on("pageerror", (error) => errors.push(error.message));
  await open(other, a.url);
  assert.equal(await card(other).getAttribute("data-state"), "ready", "the same download on node A's page");
  const conveyor = new Conveyor({
    database: join(dataDir, "downloads.db"),
    liveSecret: deriveKey(SECRET, "live"),
    logger: pino({ level: "silent" }),
  });
  try {
    await conveyor.publish("cluster", { type: "new_version", version: "2.0.0" });
  } finally {
    await conveyor.stop();
  }
  await other.locator("#notice").waitFor({ state: "visible", timeout: WAIT_MS });
  assert.match(await text(other.locator("#notice")), /New application version available, please refresh/);
  await page.waitForFunction(
    () => (globalThis as any).downloadsPage.events.some((e: any) => e.data?.type === "new_version"),
    null,
    { timeout: WAIT_MS },
  );
  assert.equal(await page.locator("#notice").isVisible(), false, "not on the page that runs 2.0.0 already");
  await shoot(other, "4-new-version");

  // Dismiss on one page: both go back to the button.
  await page.getByRole("button", { name: "Dismiss" }).click();
  await page.getByRole("button", { name: "Download PDF" }).waitFor({ timeout: WAIT_MS });
  await other.getByRole("button", { name: "Download PDF" }).waitFor({ timeout: WAIT_MS });
  assert.deepEqual(errors, [], "no error in the pages");
  console.log(`screenshots in ${SHOTS}`);
});
