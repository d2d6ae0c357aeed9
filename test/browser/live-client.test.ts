/**
 * The browser client (src/realtime/client.ts) in headless Chromium, as a page uses it: loaded without a bundler from
 * a node's `GET /api/live/client.js` (a page of another origin, served by this test), subscribed to `tasks` and an
 * application channel, recording every event it gets. Its node is restarted (the HTTP server and the Conveyor
 * stopped, events written to the same SQLite file while it is down, a new node started on the same port and file:
 * the log and its epoch survive), and the page must resume from its offset on its own: every event of its channels
 * exactly once, in the log's order, and its state through offline and recovering back to live. A node on a new file
 * (a new log, a new epoch) makes it call onReload, then go on live.
 *
 * Chromium is the Debian package at /usr/bin/chromium (CHROMIUM to override), driven by playwright-core, which
 * never downloads a browser here. Without it the tests fail under CI=true and are skipped loudly otherwise.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test, type TestContext } from "node:test";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import type { LogEvent } from "../../src/core/task.ts";
import { buildServer } from "../../src/http/server.ts";
import { Conveyor } from "../../src/runtime/conveyor.ts";
import { requireService } from "../support/services.ts";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const CHANNEL = "room:lobby";
const WAIT_MS = 10_000;

/** The page: imports the client from the node given in its query, follows `tasks` and CHANNEL, and lists what comes. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>live client</title>
<ol id="events"></ol>
<script type="module">
  const params = new URLSearchParams(location.search);
  const node = new URL(params.get("node"));
  const { LiveClient } = await import(new URL("/api/live/client.js", node).href);
  const page = (window.page = { events: [], states: [], reloads: [], errors: [] });
  const list = document.getElementById("events");
  page.start = (options = {}) => {
    page.live = new LiveClient({ url: \`ws://\${node.host}/api/live\`, minDelayMs: 50, maxDelayMs: 400, ...options });
    page.live.onState((state) => page.states.push(state));
  };
  page.subscribe = () => {
    page.subscription = page.live.subscribe(
      ["tasks", ${JSON.stringify(CHANNEL)}],
      (event) => {
        page.events.push([event.offset, event.name]);
        const item = document.createElement("li");
        item.textContent = event.offset + " " + event.name;
        list.append(item);
      },
      { onReload: (reason) => page.reloads.push(reason), onError: (error) => page.errors.push(error.code) },
    );
  };
  if (!params.has("manual")) {
    page.start();
    page.subscribe();
  }
  page.ready = true;
</script>
`;

type PageState = { events: [number, string][]; states: string[]; reloads: string[]; errors: string[] };

type Node = { conveyor: Conveyor; app: FastifyInstance; port: number; stop(): Promise<void> };

async function startNode(database: string, port = 0): Promise<Node> {
  const conveyor = new Conveyor({ database, logger: pino({ level: "silent" }), shutdownGraceMs: 200 });
  conveyor.define("echo", (data) => data);
  await conveyor.start();
  const app = await buildServer({ conveyor });
  await app.listen({ host: "127.0.0.1", port });
  return {
    conveyor,
    app,
    port: (app.server.address() as AddressInfo).port,
    async stop() {
      await app.close();
      await conveyor.stop();
    },
  };
}

/** The log's events of the page's channels after `after`, as the page lists them. */
async function expectedAfter(conveyor: Conveyor, after: number): Promise<[number, string][]> {
  const events: LogEvent[] = [];
  for (;;) {
    const page = await conveyor.store.eventList({ after: events.at(-1)?.offset ?? after, limit: 1000 });
    events.push(...page);
    if (page.length < 1000) break;
  }
  return events.filter((e) => e.channel === null || e.channel === CHANNEL).map((e) => [e.offset, e.type]);
}

/** Some traffic on both channels: messages, and tasks that run to completion on `node` (or wait, when it is not started). */
async function traffic(conveyor: Conveyor, label: string, run: boolean): Promise<void> {
  for (let i = 0; i < 3; i++) await conveyor.publish(CHANNEL, { label, i });
  const [a, b] = await conveyor.enqueueMany([
    { type: "echo", data: { label, i: 0 } },
    { type: "echo", data: { label, i: 1 } },
  ]);
  if (run) await Promise.all([conveyor.result(a!.task.id), conveyor.result(b!.task.id)]);
  await conveyor.publish(CHANNEL, { label, done: true });
}

function pageState(page: Page): Promise<PageState> {
  return page.evaluate(() => {
    const { events, states, reloads, errors } = (globalThis as unknown as { page: PageState }).page;
    return { events, states, reloads, errors };
  });
}

/** Waits until the page has had the event at `offset` (or a later one). */
async function pageReached(page: Page, offset: number): Promise<void> {
  await page.waitForFunction(
    (offset) => ((globalThis as unknown as { page: PageState }).page.events.at(-1)?.[0] ?? 0) >= offset,
    offset,
    { timeout: WAIT_MS, polling: 20 },
  );
}

async function waitState(page: Page, state: string, fromIndex: number): Promise<void> {
  await page.waitForFunction(
    ([state, from]) => (globalThis as unknown as { page: PageState }).page.states.slice(from).includes(state),
    [state, fromIndex] as const,
    { timeout: WAIT_MS, polling: 20 },
  );
}

describe("the browser client in headless Chromium", () => {
  let context: BrowserContext | null = null;
  let pages: Server | null = null;
  let pagesBase = "";
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "conveyor-browser-"));
    dirs.push(dir);
    return dir;
  };

  before(async () => {
    if (!existsSync(CHROMIUM)) return;
    context = await chromium.launchPersistentContext(tempDir(), {
      executablePath: CHROMIUM,
      headless: true,
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
    // The application's pages come from an origin of their own; the client, from the node's.
    pages = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PAGE);
    });
    await new Promise<void>((resolve) => pages!.listen(0, "127.0.0.1", resolve));
    pagesBase = `http://127.0.0.1:${(pages.address() as AddressInfo).port}/`;
  });

  after(async () => {
    await context?.close();
    await new Promise((resolve) => (pages === null ? resolve(null) : pages.close(resolve)));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** The page, its client started and subscribed (unless `manual`: then the test drives `page.start`). */
  async function openPage(t: TestContext, node: Node, manual = false): Promise<Page | null> {
    if (!requireService(t, `Chromium at ${CHROMIUM}`, context !== null)) return null;
    const page = await context!.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // The browser logs each refused connection while the node is down: that is the test, not a problem.
      const refused = /^WebSocket connection to .* failed: .*ERR_CONNECTION_REFUSED/.test(message.text());
      if (message.type() === "error" && !refused) problems.push(`console error: ${message.text()}`);
    });
    t.after(async () => {
      await page.close();
    });
    const node_ = encodeURIComponent(`http://127.0.0.1:${node.port}/`);
    await page.goto(`${pagesBase}?node=${node_}${manual ? "&manual" : ""}`);
    await page.waitForFunction(() => (globalThis as unknown as { page?: { ready?: boolean } }).page?.ready === true);
    if (!manual) await waitState(page, "live", 0);
    t.after(() => assert.deepEqual(problems, [], "the page had no errors"));
    return page;
  }

  test("a node serves the client as a JavaScript module any origin may import", async (t) => {
    const node = await startNode(join(tempDir(), "conveyor.db"));
    t.after(() => node.stop());
    const url = `http://127.0.0.1:${node.port}/api/live/client.js`;
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(response.headers.get("access-control-allow-origin"), "*");
    const text = await response.text();
    assert.match(text, /^export class LiveClient /m);
    assert.doesNotMatch(text, /#socket: WebSocket/, "types are stripped");
    const etag = response.headers.get("etag");
    assert.ok(etag);
    const again = await fetch(url, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
  });

  test("the page resumes from its offset across a restart of its node: every event once, in order", async (t) => {
    const database = join(tempDir(), "conveyor.db");
    let node = await startNode(database);
    t.after(() => node.stop());
    const writer = new Conveyor({ database, logger: pino({ level: "silent" }) });
    t.after(() => writer.stop());
    const page = await openPage(t, node);
    if (page === null) return;
    const epoch = await node.conveyor.live.epoch();
    const start = await page.evaluate(
      () => (globalThis as unknown as { page: { subscription: { position: { offset: number } } } }).page.subscription,
    );
    const from = start.position.offset;

    await traffic(node.conveyor, "before", true);
    await pageReached(page, await node.conveyor.store.eventLastOffset());
    const liveBefore = (await pageState(page)).states.length;

    await node.stop();
    await waitState(page, "offline", liveBefore);
    // While the node is down, another process writes to the log: messages, and tasks the next node will run.
    await traffic(writer, "while down", false);
    await waitState(page, "recovering", liveBefore);

    node = await startNode(database, node.port);
    assert.equal(await node.conveyor.live.epoch(), epoch, "the log and its epoch survived the restart");
    await traffic(node.conveyor, "after", true);
    // The tasks enqueued while it was down ran on the new node.
    for (const task of (await node.conveyor.list({ type: "echo" })).tasks) {
      assert.equal((await node.conveyor.waitForFinish(task.id, WAIT_MS))?.state, "completed");
    }
    await node.conveyor.publish(CHANNEL, { last: true });
    const last = await node.conveyor.store.eventLastOffset();
    await pageReached(page, last);

    const seen = await pageState(page);
    const expected = await expectedAfter(node.conveyor, from);
    assert.deepEqual(seen.events, expected, "every event of its channels once, in the log's order");
    assert.ok(expected.some(([, name]) => name === "task.completed"));
    assert.equal(expected.filter(([, name]) => name === "message").length, 13);
    assert.deepEqual(seen.reloads, [], "the gap was replayed, not a reload");
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(seen.states.slice(0, liveBefore), ["connecting", "live"]);
    const restart = seen.states.slice(liveBefore).join(" ");
    assert.match(restart, /^offline recovering (offline recovering )*live$/, "offline, recovering, live");
  });

  test("a node on a new log (another epoch) makes the page reload, then go on live", async (t) => {
    let node = await startNode(join(tempDir(), "conveyor.db"));
    t.after(() => node.stop());
    const page = await openPage(t, node);
    if (page === null) return;
    await node.conveyor.publish(CHANNEL, { n: 1 });
    await pageReached(page, await node.conveyor.store.eventLastOffset());
    const before = await pageState(page);

    await node.stop();
    node = await startNode(join(tempDir(), "conveyor.db"), node.port);
    await page.waitForFunction(() => (globalThis as unknown as { page: PageState }).page.reloads.length > 0, null, {
      timeout: WAIT_MS,
      polling: 20,
    });
    await waitState(page, "live", before.states.length);
    const offset = (await node.conveyor.store.eventLastOffset()) + 1;
    await node.conveyor.publish(CHANNEL, { n: 2 });
    // The new log's offsets start again from 1: wait for the count, not for an offset.
    await page.waitForFunction(
      (count) => (globalThis as unknown as { page: PageState }).page.events.length > count,
      before.events.length,
      { timeout: WAIT_MS, polling: 20 },
    );

    const seen = await pageState(page);
    assert.deepEqual(seen.reloads, ["epoch_changed"]);
    assert.deepEqual(seen.events.slice(before.events.length), [[offset, "message"]]);
  });

  test("a subscription made between the socket's opening and the welcome is sent once, and gets its events", async (t) => {
    const node = await startNode(join(tempDir(), "conveyor.db"));
    t.after(() => node.stop());
    // The node's welcome waits (for its log position) until the page has subscribed on the open socket.
    const live = node.conveyor.live;
    const position = live.position.bind(live);
    const subscribed = Promise.withResolvers<void>();
    live.position = async () => {
      await subscribed.promise;
      return position();
    };
    const page = await openPage(t, node, true);
    if (page === null) return;
    await page.evaluate(async () => {
      type Page = { start(options: object): void; subscribe(): void };
      const page = (globalThis as unknown as { page: Page }).page;
      const { WebSocket } = globalThis as unknown as { WebSocket: new (url: string) => EventTarget };
      await new Promise((open) => {
        page.start({
          WebSocket: class extends WebSocket {
            constructor(url: string) {
              super(url);
              this.addEventListener("open", open, { once: true });
            }
          },
        });
      });
      page.subscribe();
    });
    subscribed.resolve();
    await waitState(page, "live", 0);
    live.position = position;
    const offset = (await node.conveyor.store.eventLastOffset()) + 1;
    await node.conveyor.publish(CHANNEL, { n: 1 });
    await pageReached(page, offset);

    const seen = await pageState(page);
    assert.deepEqual(seen.errors, [], "no duplicate_subscription");
    assert.deepEqual(seen.events, [[offset, "message"]]);
    assert.deepEqual(seen.states, ["connecting", "live"]);
  });
});
