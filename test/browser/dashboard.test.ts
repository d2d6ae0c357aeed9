/**
 * The dashboard end to end in headless Chromium, against one node on SQLite (in this process, with the demo task
 * types): every page renders without a console error, in light and dark, on a desktop and a phone (screenshots in
 * test-output/screenshots); a task enqueued through the API appears and its progress bar moves; Stop ends it
 * cancelled in the store; a demo.spin's thread is terminated, and its stop lifecycle says so; a queue is paused; a
 * schedule is edited; a reload in the middle of a burst shows every task once; a crashed service is restarted,
 * visibly. One browser for the file.
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import Fastify from "fastify";
import type { BrowserContext, Page } from "playwright-core";
import { conveyorRoutes } from "../../src/http/server.ts";
import {
  type DashNode,
  DESKTOP,
  ensureDashboardBuilt,
  eventually,
  launchBrowser,
  openPage,
  PHONE,
  screenshot,
  startNode,
  WAIT_MS,
  waitLive,
} from "./dashboard-support.ts";

/** Ids of the task rows the page shows, top to bottom. */
async function rowIds(page: Page): Promise<number[]> {
  return page.$$eval("tr[data-task]", (rows) =>
    rows
      .map((row) => ({
        id: Number((row as unknown as { dataset: { task: string } }).dataset.task),
        top: row.getBoundingClientRect().top,
      }))
      .sort((a, b) => a.top - b.top)
      .map((r) => r.id),
  );
}

async function progressOf(page: Page, id: number): Promise<number> {
  const value = await page
    .locator(`tr[data-task="${id}"] [role="progressbar"]`)
    .getAttribute("aria-valuenow", { timeout: WAIT_MS });
  return Number(value);
}

describe("the dashboard", () => {
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let context: BrowserContext | null;
  let node: DashNode;

  before(async () => {
    ensureDashboardBuilt();
    browser = await launchBrowser();
    context = browser.context;
    node = await startNode({
      nodeName: "node-a",
      allowFaultInjection: true,
      define(conveyor) {
        conveyor.define(
          "report.build",
          () => {
            throw new Error("the report's source is gone (HTTP 410)");
          },
          { maxAttempts: 2, backoff: { baseMs: 10 } },
        );
        conveyor.define("demo.fast", (data) => data, { queue: "fast" });
      },
    });
  });

  after(async () => {
    await node?.stop();
    await browser?.close();
  });

  test("every page renders with no console error, light and dark, desktop and phone", async (t) => {
    const { conveyor } = node;
    // Something on every page: finished, failed, running (with progress), waiting and cancelled tasks, a paused
    // queue, a schedule.
    const [done, failing, running, later, stopped] = await conveyor.enqueueMany([
      { type: "demo.sleep", data: { ms: 50, steps: 2 } },
      { type: "report.build", data: { month: "2026-11" } },
      { type: "demo.sleep", data: { ms: 120_000, steps: 1200 } },
      { type: "demo.sleep", data: { ms: 10 }, delay: 3_600_000 },
      { type: "demo.sleep", data: { ms: 60_000 }, queue: "mail" },
    ]);
    await conveyor.result(done!.task.id);
    await conveyor.result(failing!.task.id).catch(() => {});
    await conveyor.cancel(stopped!.task.id);
    await conveyor.pauseQueue("mail");
    await conveyor.schedule("nightly-report", { cron: "0 3 * * *", type: "report.build", timezone: "Europe/Paris" });
    await conveyor.schedule("cleanup", { cron: "*/15 * * * *", type: "demo.sleep", data: { ms: 10 } });
    void later;
    const views: [string, string, string][] = [
      ["overview", "/", "Overview"],
      ["tasks", "/tasks", "Tasks"],
      ["task", `/tasks/${running!.task.id}`, `demo.sleep`],
      ["failed-task", `/tasks/${failing!.task.id}`, "report.build"],
      ["queues", "/queues", "Queues"],
      ["nodes", "/nodes", "Nodes"],
      ["schedules", "/schedules", "Schedules"],
    ];
    for (const [device, viewport] of [
      ["desktop", DESKTOP],
      ["phone", PHONE],
    ] as const) {
      for (const scheme of ["light", "dark"] as const) {
        const opened = await openPage(t, context, `${node.base}/`, { viewport, colorScheme: scheme });
        if (opened === null) return;
        const { page } = opened;
        for (const [name, path, heading] of views) {
          await page.goto(`${node.base}${path}`);
          await page.getByRole("heading", { level: 1 }).filter({ hasText: heading }).waitFor({ timeout: WAIT_MS });
          await waitLive(page);
          if (name === "tasks") await page.locator("tr[data-task]").first().waitFor();
          if (name === "task") await page.getByRole("progressbar").first().waitFor();
          if (name === "nodes") await page.getByText("Supervision tree").first().waitFor();
          if (name === "overview") await page.locator(".chart canvas").first().waitFor();
          await page.waitForTimeout(250); // charts and relative times settle
          // Nothing is wider than the screen (no sideways scrolling, nothing cut off at the right).
          const overflow = await page.evaluate(() => {
            const browser = globalThis as unknown as {
              document: { documentElement: { scrollWidth: number } };
              innerWidth: number;
            };
            return browser.document.documentElement.scrollWidth - browser.innerWidth;
          });
          assert.ok(overflow <= 0, `${name} on ${device} is ${overflow}px wider than the screen`);
          await screenshot(page, `${name}-${device}-${scheme}`);
        }
      }
    }
  });

  test("a task enqueued through the API appears, its progress bar moves, and Stop ends it cancelled in the store", async (t) => {
    const opened = await openPage(t, context, `${node.base}/tasks?type=demo.sleep`);
    if (opened === null) return;
    const { page } = opened;
    await page.locator("tr[data-task]").first().or(page.getByText("No task matches")).waitFor();
    await waitLive(page);
    const reply = await fetch(`${node.base}/api/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "demo.sleep", data: { ms: 30_000, steps: 300 } }),
    });
    const { task } = (await reply.json()) as { task: { id: number } };
    // New rows are announced, not pushed in under the pointer.
    await page.getByRole("button", { name: /1 new/ }).click({ timeout: WAIT_MS });
    await page.locator(`tr[data-task="${task.id}"]`).waitFor();
    assert.equal((await rowIds(page))[0], task.id, "the new task is the first row");
    const first = await eventually("progress", async () => {
      const p = await progressOf(page, task.id);
      return p > 0 ? p : null;
    });
    await eventually("the progress bar to move", async () => (await progressOf(page, task.id)) > first);
    // Its rate and ETA show once two reports are in.
    await page
      .locator(`tr[data-task="${task.id}"]`)
      .getByText(/%\/s · ETA/)
      .waitFor({ timeout: WAIT_MS });

    await page.locator(`tr[data-task="${task.id}"] a`).click();
    await page.getByRole("heading", { level: 1, name: new RegExp(`#${task.id}`) }).waitFor();
    await page.getByRole("button", { name: "Stop", exact: true }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Stop task" }).click();
    await eventually(
      "the task cancelled in the store",
      async () => (await node.conveyor.get(task.id))?.state === "cancelled",
    );
    await page.locator(".badge.state-cancelled").first().waitFor({ timeout: WAIT_MS });
    const lifecycle = page.getByRole("list", { name: "Stop lifecycle" });
    await lifecycle.getByText("Stop requested").waitFor();
    await lifecycle.getByText("Signal on node-").waitFor();
    // An inline handler that honours its signal: it threw (its sleep was aborted) right after the signal.
    await lifecycle.locator('[data-stop-how="threw"]').waitFor({ timeout: WAIT_MS });
  });

  test("stopping a demo.spin terminates its thread, and its stop lifecycle says so", async (t) => {
    const spin = await node.conveyor.enqueue("demo.spin", { ms: 60_000 });
    const opened = await openPage(t, context, `${node.base}/tasks/${spin.id}`);
    if (opened === null) return;
    const { page } = opened;
    await page.locator(".badge.state-running").first().waitFor({ timeout: WAIT_MS });
    await waitLive(page);
    await page.getByRole("button", { name: "Stop", exact: true }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Stop task" }).click();
    await eventually(
      "the spin cancelled in the store",
      async () => (await node.conveyor.get(spin.id))?.state === "cancelled",
    );
    const lifecycle = page.getByRole("list", { name: "Stop lifecycle" });
    // demo.spin ignores its signal: after its grace period (1 s) its thread is terminated.
    await lifecycle.locator('[data-stop-how="terminated"]').waitFor({ timeout: WAIT_MS });
    assert.match(
      (await lifecycle.textContent()) ?? "",
      /Thread terminated[\s\S]*thread was terminated after the grace period/,
    );
    await screenshot(page, "task-stopped-spin-desktop-light");
    // Reloaded, the page finds the outcome again (from the nodes channel, replayed from the cancel).
    await page.reload();
    await lifecycle.locator('[data-stop-how="terminated"]').waitFor({ timeout: WAIT_MS });
  });

  test("a queue is paused and resumed from its card", async (t) => {
    await node.conveyor.enqueue("demo.fast", { hello: 1 });
    const opened = await openPage(t, context, `${node.base}/queues`);
    if (opened === null) return;
    const { page } = opened;
    const card = page.locator('section[data-queue="fast"]');
    await card.getByRole("button", { name: "Pause" }).click({ timeout: WAIT_MS });
    await eventually("fast paused in the store", async () =>
      (await node.conveyor.queues()).find((q) => q.queue === "fast" && q.paused),
    );
    await card.getByText("paused", { exact: true }).waitFor();
    await card.getByRole("button", { name: "Resume" }).click();
    await eventually("fast resumed", async () =>
      (await node.conveyor.queues()).find((q) => q.queue === "fast" && !q.paused),
    );
    // Concurrency per node, changed live.
    await card.getByRole("button", { name: "Change the concurrency of fast" }).click();
    await card.getByRole("spinbutton").fill("3");
    await card.getByRole("button", { name: "Set" }).click();
    await eventually("fast's concurrency 3", async () =>
      (await node.conveyor.queues()).find((q) => q.queue === "fast" && q.concurrency === 3),
    );
    await card.getByText("3", { exact: true }).waitFor();
  });

  test("a schedule is edited: the expression checked, its next five runs shown, saved", async (t) => {
    await node.conveyor.schedule("digest", { cron: "0 8 * * 1", type: "demo.sleep", data: { ms: 10 } });
    const opened = await openPage(t, context, `${node.base}/schedules`);
    if (opened === null) return;
    const { page } = opened;
    await page.getByRole("button", { name: "Edit digest" }).click({ timeout: WAIT_MS });
    const dialog = page.getByRole("dialog");
    const cron = dialog.getByLabel("Cron expression");
    await cron.fill("0 8 * *");
    await dialog
      .getByRole("alert")
      .getByText(/5 fields/)
      .waitFor();
    assert.equal(await dialog.getByRole("button", { name: "Save" }).isDisabled(), true);
    await cron.fill("30 9 * * 1-5");
    await dialog.locator(".preview-runs li").nth(4).waitFor();
    assert.equal(await dialog.locator(".preview-runs li").count(), 5);
    await screenshot(page, "schedule-editor-desktop-light");
    await dialog.getByRole("button", { name: "Save" }).click();
    await eventually("the schedule saved", async () =>
      (await node.conveyor.schedules()).find((s) => s.name === "digest" && s.cron === "30 9 * * 1-5"),
    );
    await page.locator('[data-schedule="digest"] code').filter({ hasText: "30 9 * * 1-5" }).waitFor();
    assert.match(page.url(), /\/schedules$/, "the editor's URL state is gone once saved");
  });

  test("a reload in the middle of a burst shows every task exactly once, each in its state in the store", async (t) => {
    const opened = await openPage(t, context, `${node.base}/tasks?queue=fast`, {
      viewport: { width: 1440, height: 4200 },
    });
    if (opened === null) return;
    const { page } = opened;
    await page.locator("tr[data-task]").first().or(page.getByText("No task matches")).waitFor();
    await waitLive(page);
    const before = await rowIds(page);
    const ids: number[] = [];
    let reloaded: Promise<unknown> | null = null;
    for (let i = 0; i < 80; i++) {
      ids.push((await node.conveyor.enqueue("demo.fast", { i })).id);
      if (i === 35) reloaded = page.reload();
      await new Promise((resolve) => setTimeout(resolve, 8));
    }
    await reloaded;
    await Promise.all(ids.map((id) => node.conveyor.result(id)));
    const pill = page.getByRole("button", { name: /new/ });
    await page.waitForTimeout(300);
    if (await pill.isVisible()) await pill.click();
    const expected = [...ids].reverse().concat(before);
    await eventually("every row", async () => (await rowIds(page)).length === expected.length);
    const shown = await rowIds(page);
    assert.deepEqual(shown, expected, "every task once, newest first");
    assert.equal(new Set(shown).size, shown.length, "no row twice");
    // Every row caught up with its task's end through the stream (none was reloaded after its task finished).
    await eventually("every row completed", async () =>
      page.$$eval('tr[data-task][data-state="completed"]', (rows, n) => rows.length === n, expected.length),
    ).catch(async () => {
      const states = await page.$$eval("tr[data-task]", (rows) =>
        rows.map((r) => (r as unknown as { dataset: { state: string } }).dataset.state),
      );
      assert.fail(`rows not all completed: ${JSON.stringify(states)}`);
    });
  });

  test("bulk actions: chosen rows stopped at once, then every matching task rerun in the background, with a report", async (t) => {
    await node.conveyor.pauseQueue("bulk");
    const outcomes = await node.conveyor.enqueueMany(
      Array.from({ length: 5 }, (_, i) => ({ type: "demo.sleep", queue: "bulk", data: { ms: 10, i } })),
    );
    const ids = outcomes.map((o) => o.task.id);
    const opened = await openPage(t, context, `${node.base}/tasks?queue=bulk`);
    if (opened === null) return;
    const { page } = opened;
    await page.locator(`tr[data-task="${ids[0]}"]`).waitFor({ timeout: WAIT_MS });
    await waitLive(page);
    await page.getByRole("checkbox", { name: `Select task ${ids[0]}` }).check();
    await page.getByRole("checkbox", { name: `Select task ${ids[1]}` }).check();
    await page.getByText("2 selected").waitFor();
    await page.locator(".selection").getByRole("button", { name: "Stop" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("heading", { name: "Stop 2 tasks?" }).waitFor();
    await dialog.getByRole("button", { name: "Stop 2 tasks" }).click();
    await dialog.getByText(/2 tasks\s+stopped/).waitFor({ timeout: WAIT_MS });
    for (const id of ids.slice(0, 2)) assert.equal((await node.conveyor.get(id))?.state, "cancelled");
    await dialog.getByRole("button", { name: "Close" }).first().click();
    // The rows follow: the two are cancelled, live.
    await page.locator(`tr[data-task="${ids[0]}"][data-state="cancelled"]`).waitFor({ timeout: WAIT_MS });

    await page.getByRole("checkbox", { name: "Select all loaded rows" }).check();
    await page.getByRole("button", { name: "Select all matching" }).click();
    await page.locator(".selection").getByRole("button", { name: "Rerun" }).click();
    await dialog.getByRole("button", { name: "Rerun all matching" }).click();
    // Done by a conveyor.bulk task on the server; its progress and its report come through its own channel.
    await dialog.getByText(/2 tasks\s+rerun, 3 skipped/).waitFor({ timeout: WAIT_MS });
    await screenshot(page, "bulk-rerun-desktop-light");
    for (const id of ids.slice(0, 2)) assert.equal((await node.conveyor.get(id))?.state, "queued");
    await dialog.getByRole("button", { name: "Close" }).first().click();
    await node.conveyor.resumeQueue("bulk");
  });

  test("keyboard: / finds, ? helps, g q goes to the queues", async (t) => {
    const opened = await openPage(t, context, `${node.base}/tasks`);
    if (opened === null) return;
    const { page } = opened;
    await page.getByRole("heading", { level: 1, name: "Tasks" }).waitFor({ timeout: WAIT_MS });
    await page.keyboard.press("/");
    assert.equal(
      await page.evaluate(() =>
        (
          globalThis as unknown as { document: { activeElement: { getAttribute(n: string): string | null } } }
        ).document.activeElement.getAttribute("aria-label"),
      ),
      "Find a task by id",
    );
    await page.keyboard.press("Escape");
    await page.keyboard.press("?");
    await page.getByRole("dialog", { name: "Keyboard shortcuts" }).waitFor();
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "hidden" });
    await page.keyboard.press("g");
    await page.keyboard.press("q");
    await page.getByRole("heading", { level: 1, name: "Queues" }).waitFor({ timeout: WAIT_MS });
    assert.match(page.url(), /\/queues$/);
  });

  test("a new major version on every node shows the reload notice (and the same major does not)", async (t) => {
    const opened = await openPage(t, context, `${node.base}/`);
    if (opened === null) return;
    await opened.page.getByRole("heading", { level: 1, name: "Overview" }).waitFor({ timeout: WAIT_MS });
    await waitLive(opened.page);
    assert.equal(await opened.page.getByText("A new version of Conveyor is deployed").count(), 0);
    const newer = await startNode({ nodeName: "upgraded", version: "1.4.0" });
    const upgraded = await openPage(t, context, `${newer.base}/`);
    t.after(() => newer.stop()); // after the page's own after-hook has closed it
    if (upgraded === null) return;
    const banner = upgraded.page.getByRole("alert").filter({ hasText: "A new version of Conveyor is deployed" });
    await banner.waitFor({ timeout: WAIT_MS });
    assert.match((await banner.textContent()) ?? "", /1\.4\.0/);
    await banner.getByRole("button", { name: "Reload" }).waitFor();
  });

  test("a hidden tab does no work: its subscriptions close, and reopen from their positions when it is shown", async (t) => {
    const opened = await openPage(t, context, `${node.base}/tasks?queue=fast`);
    if (opened === null) return;
    const { page } = opened;
    const frames: { dir: "in" | "out"; frame: { type: string; since?: { offset: number } } }[] = [];
    page.on("websocket", (ws) => {
      ws.on("framereceived", (f) => frames.push({ dir: "in", frame: JSON.parse(String(f.payload)) }));
      ws.on("framesent", (f) => frames.push({ dir: "out", frame: JSON.parse(String(f.payload)) }));
    });
    await page.reload();
    await page.locator("tr[data-task]").first().or(page.getByText("No task matches")).waitFor({ timeout: WAIT_MS });
    await waitLive(page);
    const setHidden = (hidden: boolean) =>
      page.evaluate((hidden) => {
        const doc = (globalThis as unknown as { document: object & { dispatchEvent(e: unknown): void } }).document;
        Object.defineProperty(doc, "hidden", { value: hidden, configurable: true });
        Object.defineProperty(doc, "visibilityState", { value: hidden ? "hidden" : "visible", configurable: true });
        doc.dispatchEvent(
          new (globalThis as unknown as { Event: new (name: string) => unknown }).Event("visibilitychange"),
        );
      }, hidden);
    await setHidden(true);
    await eventually("every subscription closed", async () =>
      frames.filter((f) => f.frame.type === "unsubscribed").length >= 3 ? true : null,
    );
    const hiddenAt = frames.length;
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push((await node.conveyor.enqueue("demo.fast", { hidden: i })).id);
    await Promise.all(ids.map((id) => node.conveyor.result(id)));
    await page.waitForTimeout(300);
    assert.deepEqual(
      frames.slice(hiddenAt).filter((f) => f.frame.type === "event"),
      [],
      "no event reaches a hidden tab",
    );
    await setHidden(false);
    // Reopened from where each one stood, so the tasks made meanwhile are all counted, once.
    await page.getByRole("button", { name: /5 new/ }).waitFor({ timeout: WAIT_MS });
    const resubscribed = frames.slice(hiddenAt).filter((f) => f.dir === "out" && f.frame.type === "subscribe");
    assert.ok(resubscribed.length >= 3 && resubscribed.every((f) => f.frame.since !== undefined));
  });

  test("mounted under a prefix in another Fastify app, the dashboard routes, reads and follows the stream there", async (t) => {
    const host = Fastify();
    host.get("/", async () => "the host's home");
    await host.register(conveyorRoutes, { prefix: "/ops/conveyor", conveyor: node.conveyor });
    await host.listen({ host: "127.0.0.1", port: 0 });
    const base = `http://127.0.0.1:${(host.server.address() as AddressInfo).port}/ops/conveyor`;
    const opened = await openPage(t, context, `${base}/tasks?type=demo.sleep`);
    // After the page's own after-hook (which closes it): a page left open on a closed server logs refused connections.
    t.after(() => host.close());
    if (opened === null) return;
    const { page } = opened;
    await page.locator("tr[data-task]").first().or(page.getByText("No task matches")).waitFor({ timeout: WAIT_MS });
    await waitLive(page);
    const task = await node.conveyor.enqueue("demo.sleep", { ms: 20_000, steps: 200 });
    await page.getByRole("button", { name: /1 new/ }).click({ timeout: WAIT_MS });
    await page.locator(`tr[data-task="${task.id}"] a`).click();
    await page.getByRole("heading", { level: 1, name: new RegExp(`#${task.id}`) }).waitFor();
    assert.equal(new URL(page.url()).pathname, `/ops/conveyor/tasks/${task.id}`);
    // A deep link under the prefix opens the same view.
    await page.reload();
    await page.getByRole("progressbar").first().waitFor({ timeout: WAIT_MS });
    await page.getByRole("link", { name: "Queues" }).click();
    assert.equal(new URL(page.url()).pathname, "/ops/conveyor/queues");
    await node.conveyor.cancel(task.id);
  });

  test("failure drills: a crashed service is restarted by its supervisor, visibly", async (t) => {
    const opened = await openPage(t, context, `${node.base}/nodes`);
    if (opened === null) return;
    const { page } = opened;
    const drills = page.locator(".drills");
    await drills.getByLabel("Crash a service on this node").selectOption("scheduler", { timeout: WAIT_MS });
    await waitLive(page);
    await drills.getByRole("button", { name: "Crash it" }).click();
    await page.locator(".cluster-timeline [data-event='service.crashed']").waitFor({ timeout: WAIT_MS });
    await page.locator(".cluster-timeline [data-event='service.restarted']").waitFor({ timeout: WAIT_MS });
    await page
      .locator(".tree-row")
      .filter({ hasText: "scheduler" })
      .getByText("1 restart")
      .waitFor({ timeout: WAIT_MS });
  });

  // Last in the file: its 20,000 tasks would crowd the other tests' lists.
  test("a rare type older than a whole stretch of ids is found: the list asks for the next stretches by itself", async (t) => {
    const [rare] = await node.conveyor.enqueueMany([{ type: "rare.kind", queue: "archive", data: null }]);
    // More tasks of another type than one request reads (runtime/task-listing.ts's SCAN_IDS): the first page of
    // type=rare.kind is empty, with a cursor.
    for (let i = 0; i < 4; i++)
      await node.conveyor.enqueueMany(
        Array.from({ length: 5_050 }, () => ({ type: "archive.item", queue: "archive", data: null })),
      );
    const opened = await openPage(t, context, `${node.base}/tasks?type=rare.kind`);
    if (opened === null) return;
    const { page } = opened;
    await page.locator(`tr[data-task="${rare!.task.id}"]`).waitFor({ timeout: WAIT_MS });
    assert.deepEqual(await rowIds(page), [rare!.task.id]);
    await page.getByText("No task matches these filters").waitFor({ state: "detached" });
  });
});
