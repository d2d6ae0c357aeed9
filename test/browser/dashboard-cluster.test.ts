/**
 * The dashboard on a cluster, in headless Chromium: two nodes on one PostgreSQL schema, the page on node A and the
 * work on node B (only B defines the type, on a queue A does not serve). The page sees B's task appear and its
 * progress move through A's stream, stops it from A (the cancel reaches B through the bus, and B's `task.stopped`
 * comes back through the log), and shows both nodes, their leader, and B joining and leaving in the cluster's
 * timeline. One browser for the file.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { BrowserContext } from "playwright-core";
import { dropSchema, freshSchema, postgresAvailable, postgresUrl, requirePostgres } from "../support/postgres.ts";
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

describe("the dashboard on a two-node PostgreSQL cluster", async () => {
  const available = await postgresAvailable();
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let context: BrowserContext | null = null;
  let a: DashNode | null = null;
  let b: DashNode | null = null;
  const schema = freshSchema("dashboard_cluster");

  before(async () => {
    if (!available) return;
    ensureDashboardBuilt();
    browser = await launchBrowser();
    context = browser.context;
    const common = { database: postgresUrl(), schema, heartbeatIntervalMs: 250, demo: false } as const;
    a = await startNode({ ...common, nodeName: "page-node" });
    b = await startNode({
      ...common,
      nodeName: "work-node",
      define(conveyor) {
        conveyor.define(
          "render.video",
          async (data: { ms: number; steps: number }, ctx) => {
            for (let step = 1; step <= data.steps; step++) {
              await new Promise((resolve, reject) => {
                const timer = setTimeout(resolve, data.ms / data.steps);
                ctx.signal.addEventListener("abort", () => (clearTimeout(timer), reject(ctx.signal.reason)), {
                  once: true,
                });
              });
              ctx.progress((step / data.steps) * 100, { frame: step });
            }
            return { frames: data.steps };
          },
          { queue: "render" },
        );
      },
    });
  });

  after(async () => {
    await b?.stop();
    await a?.stop();
    await browser?.close();
    if (available) await dropSchema(schema);
  });

  test("the page on one node follows and stops work running on the other", async (t) => {
    if (!(await requirePostgres(t))) return;
    const opened = await openPage(t, context, `${a!.base}/tasks?queue=render`);
    if (opened === null) return;
    const { page } = opened;
    // On a failure, the stream's frames and the page as it was say what happened.
    const frames: string[] = [];
    page.on("websocket", (ws) => {
      ws.on("framereceived", (f) => frames.push(`<< ${String(f.payload).slice(0, 200)}`));
      ws.on("framesent", (f) => frames.push(`>> ${String(f.payload).slice(0, 200)}`));
    });
    let passed = false;
    t.after(() => {
      if (!passed) console.log(frames.join("\n"));
    });
    await page.getByText("No task matches").or(page.locator("tr[data-task]").first()).waitFor({ timeout: WAIT_MS });
    await waitLive(page);
    // Enqueued through A's API; only B serves the queue.
    const reply = await fetch(`${a!.base}/api/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "render.video", queue: "render", data: { ms: 40_000, steps: 400 } }),
    });
    const { task } = (await reply.json()) as { task: { id: number } };
    await page.getByRole("button", { name: /1 new/ }).click({ timeout: WAIT_MS });
    const row = page.locator(`tr[data-task="${task.id}"]`);
    await row.getByRole("progressbar").waitFor({ timeout: WAIT_MS });
    assert.equal(await row.locator(".col-node").textContent(), "work-node", "B runs it");
    const progress = async () => Number(await row.getByRole("progressbar").getAttribute("aria-valuenow"));
    const first = await progress();
    await eventually("progress from B through A's stream", async () => (await progress()) > first);

    await row.locator("a").click();
    await page.getByRole("button", { name: "Stop", exact: true }).click({ timeout: WAIT_MS });
    await page.getByRole("dialog").getByRole("button", { name: "Stop task" }).click();
    const lifecycle = page.getByRole("list", { name: "Stop lifecycle" });
    await lifecycle.getByText("Signal on work-node").waitFor({ timeout: WAIT_MS });
    // B's own account of the stop, written on B and read through A.
    await lifecycle.locator('[data-stop-how="threw"]').waitFor({ timeout: WAIT_MS });
    assert.match((await lifecycle.textContent()) ?? "", /Stopped[\s\S]*on work-node/);
    assert.equal((await b!.conveyor.get(task.id))?.state, "cancelled");
    await screenshot(page, "cluster-task-stopped-desktop-light");

    await page.goto(`${a!.base}/nodes`);
    for (const name of ["page-node", "work-node"])
      await page.getByRole("heading", { level: 2, name }).waitFor({ timeout: WAIT_MS });
    const leaders = await page.locator(".node-card .panel-actions").getByText("leader", { exact: true }).count();
    assert.equal(leaders, 1, "one leader");
    await screenshot(page, "cluster-nodes-desktop-light");
    // B leaves: the timeline says so, live, and its card turns dead or goes.
    await b!.stop();
    b = null;
    await page.locator(".cluster-timeline [data-event='node.left']").waitFor({ timeout: WAIT_MS });
    passed = true;
  });
});
