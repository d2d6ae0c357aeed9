/**
 * Support for the dashboard's browser tests: the built dashboard (built here when dashboard/dist is missing), a node
 * in this process with the demo task types, headless Chromium (Debian's, driven by playwright-core, which never
 * downloads a browser), a page that records its console errors and fails the test on any, and screenshots under
 * test-output/screenshots (git-ignored).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import registerDemo from "../../examples/demo/handlers.ts";
import { buildServer } from "../../src/http/server.ts";
import { Conveyor } from "../../src/runtime/conveyor.ts";
import type { ConveyorOptions } from "../../src/runtime/options.ts";
import { requireService } from "../support/services.ts";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const SHOTS = join(ROOT, "test-output", "screenshots");
export const WAIT_MS = 15_000;

export const DESKTOP = { width: 1440, height: 900 };
export const PHONE = { width: 390, height: 844 };

/** dashboard/dist, built once if a checkout has none yet (npm install builds it; this is ~1 s of Vite). */
export function ensureDashboardBuilt(): void {
  if (existsSync(join(ROOT, "dashboard", "dist", "index.html"))) return;
  execFileSync(
    join(ROOT, "node_modules", ".bin", "vite"),
    ["build", "--config", "dashboard/vite.config.ts", "--logLevel", "warn"],
    {
      cwd: ROOT,
      stdio: "inherit",
    },
  );
}

export async function launchBrowser(): Promise<{ context: BrowserContext | null; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) return { context: null, close: async () => {} };
  const dir = mkdtempSync(join(tmpdir(), "conveyor-dashboard-browser-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: DESKTOP,
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
  return {
    context,
    async close() {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type DashNode = { conveyor: Conveyor; app: FastifyInstance; base: string; stop(): Promise<void> };

/** A started node with the demo types (and `extra` ones), its HTTP server (API + dashboard) on a free port. */
export async function startNode(
  options: Partial<ConveyorOptions> & {
    token?: string;
    readToken?: string;
    adminToken?: string;
    define?: (conveyor: Conveyor) => void;
    demo?: boolean;
  } = {},
): Promise<DashNode> {
  const { token, readToken, adminToken, define, demo, ...conveyorOptions } = options;
  const dir = conveyorOptions.database === undefined ? mkdtempSync(join(tmpdir(), "conveyor-dashboard-")) : null;
  const conveyor = new Conveyor({
    logger: pino({ level: "silent" }),
    shutdownGraceMs: 300,
    ...conveyorOptions,
    database: conveyorOptions.database ?? join(dir!, "conveyor.db"),
  });
  if (demo !== false) registerDemo(conveyor);
  define?.(conveyor);
  const app = await buildServer({
    conveyor,
    token: token ?? null,
    readToken: readToken ?? null,
    adminToken: adminToken ?? null,
  });
  await app.ready();
  await conveyor.start();
  await app.listen({ host: "127.0.0.1", port: 0 });
  return {
    conveyor,
    app,
    base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    async stop() {
      await app.close();
      await conveyor.stop();
      if (dir !== null) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type OpenPage = { page: Page; problems: string[] };

/**
 * A new page at `url`, recording console errors and page errors; the test fails if it had any (checked when the test
 * ends). Null (and the test skipped, or failed under CI=true) without Chromium.
 */
export async function openPage(
  t: TestContext,
  context: BrowserContext | null,
  url: string,
  options: { viewport?: { width: number; height: number }; colorScheme?: "light" | "dark" } = {},
): Promise<OpenPage | null> {
  if (!requireService(t, `Chromium at ${CHROMIUM}`, context !== null)) return null;
  const page = await context!.newPage();
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning")
      problems.push(`console ${message.type()}: ${message.text()}`);
  });
  if (options.viewport !== undefined) await page.setViewportSize(options.viewport);
  await page.emulateMedia({ colorScheme: options.colorScheme ?? "light" });
  t.after(async () => {
    await page.close();
    assert.deepEqual(problems, [], "the page logged no error");
  });
  await page.goto(url);
  return { page, problems };
}

/** Waits until the live stream says it is live (the sidebar's indicator). */
export async function waitLive(page: Page): Promise<void> {
  await page.getByRole("status", { name: "Stream: Live" }).waitFor({ timeout: WAIT_MS });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true });
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Polls `check` (in the test, against the store) until it returns a value, or fails after WAIT_MS. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | null | false>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
