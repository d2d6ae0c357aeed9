/**
 * The dashboard with tokens, in headless Chromium: a node that needs a read token for everything asks for one before
 * it shows anything (a wrong one is refused), keeps it for the session (a reload does not ask again), and follows the
 * stream with it; with the read-only token every write action is hidden, and the server refuses a write sent anyway;
 * signing in with the write token brings them back, but for the admin ones (concurrency, bulk delete), which the
 * admin token brings. One browser for the file.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { BrowserContext } from "playwright-core";
import {
  type DashNode,
  ensureDashboardBuilt,
  eventually,
  launchBrowser,
  openPage,
  screenshot,
  startNode,
  WAIT_MS,
  waitLive,
} from "./dashboard-support.ts";

const WRITE = "write-secret-7f3a";
const READ = "read-secret-19cd";
const ADMIN = "admin-secret-c0de";

describe("the dashboard with tokens", () => {
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let context: BrowserContext | null;
  let node: DashNode;

  before(async () => {
    ensureDashboardBuilt();
    browser = await launchBrowser();
    context = browser.context;
    node = await startNode({ token: WRITE, readToken: READ, adminToken: ADMIN, nodeName: "guarded" });
  });

  after(async () => {
    await node?.stop();
    await browser?.close();
  });

  test("asks for a token, refuses a wrong one, and with the read token shows everything live but no write action", async (t) => {
    const running = await node.conveyor.enqueue("demo.sleep", { ms: 60_000, steps: 600 });
    const opened = await openPage(t, context, `${node.base}/tasks`);
    if (opened === null) return;
    const { page, problems } = opened;
    const field = page.getByLabel("API token");
    await field.waitFor({ timeout: WAIT_MS });
    await screenshot(page, "sign-in-desktop-light");
    await field.fill("not-a-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").getByText("not one this server knows").waitFor();
    await field.fill(READ);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "Tasks" }).waitFor({ timeout: WAIT_MS });
    await waitLive(page);
    await page.getByText("read-only", { exact: true }).waitFor();
    await page.locator(`tr[data-task="${running.id}"]`).waitFor();
    assert.equal(await page.getByRole("checkbox").count(), 0, "no row can be selected for a bulk action");

    // The stream works with the read token: a task added elsewhere is announced.
    await node.conveyor.enqueue("demo.sleep", { ms: 10 });
    await page.getByRole("button", { name: /1 new/ }).waitFor({ timeout: WAIT_MS });

    // The session keeps the token: a reload goes straight to the page.
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Tasks" }).waitFor({ timeout: WAIT_MS });
    assert.equal(await page.getByLabel("API token").count(), 0);

    await page.goto(`${node.base}/tasks/${running.id}`);
    await page.getByRole("progressbar").first().waitFor({ timeout: WAIT_MS });
    assert.equal(await page.getByRole("button", { name: "Stop", exact: true }).count(), 0, "no Stop button");
    await page.goto(`${node.base}/queues`);
    await page.locator('section[data-queue="default"]').waitFor({ timeout: WAIT_MS });
    assert.equal(await page.getByRole("button", { name: "Pause" }).count(), 0, "no Pause button");
    assert.equal(await page.getByRole("button", { name: /Change the concurrency/ }).count(), 0);
    await page.goto(`${node.base}/schedules`);
    await page.getByRole("heading", { level: 1, name: "Schedules" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "New schedule" }).count(), 0);
    await screenshot(page, "read-only-schedules-desktop-light");

    // A write sent anyway, with the session's token, is refused by the server.
    const status = await page.evaluate(async (id) => {
      const token = sessionStorage.getItem("conveyor.token");
      const reply = await fetch(`/api/tasks/${id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${token}` },
      });
      return reply.status;
    }, running.id);
    assert.equal(status, 403);
    assert.equal((await node.conveyor.get(running.id))?.state, "running");
    // That refusal was the test's doing, not the page's: the browser logs the 403 of its fetch.
    problems.splice(0, problems.length, ...problems.filter((p) => !/403/.test(p)));

    // Signing in with the write token brings the write actions back.
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("dialog").getByLabel("API token").fill(WRITE);
    await page.getByRole("dialog").getByRole("button", { name: "Sign in" }).click();
    await page.goto(`${node.base}/queues`);
    await page
      .locator('section[data-queue="default"]')
      .getByRole("button", { name: "Pause" })
      .click({ timeout: WAIT_MS });
    await eventually("default paused", async () =>
      (await node.conveyor.queues()).find((q) => q.queue === "default" && q.paused),
    );
    await node.conveyor.resumeQueue("default");
    // The write token steers but does not administer: no concurrency to change, no bulk delete.
    assert.equal(await page.getByRole("button", { name: /Change the concurrency/ }).count(), 0);
    await page.goto(`${node.base}/tasks`);
    await page.locator(`tr[data-task="${running.id}"]`).getByRole("checkbox").check({ timeout: WAIT_MS });
    await page.getByRole("button", { name: "Stop", exact: true }).first().waitFor();
    assert.equal(await page.getByRole("button", { name: "Delete", exact: true }).count(), 0, "no bulk delete");

    // The admin token brings them.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API token").fill(ADMIN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "Tasks" }).waitFor({ timeout: WAIT_MS });
    await page.goto(`${node.base}/queues`);
    await page
      .locator('section[data-queue="default"]')
      .getByRole("button", { name: /Change the concurrency/ })
      .waitFor({ timeout: WAIT_MS });
    await node.conveyor.cancel(running.id);
  });
});
