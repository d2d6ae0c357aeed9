/**
 * The dashboard's files and page, served by every node at `/` and under a prefix wherever Conveyor's routes are
 * mounted (a Fastify plugin, a node:http handler): a built dashboard of two files stands in for dashboard/dist.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import pino from "pino";
import { Conveyor } from "../runtime/conveyor.ts";
import { buildServer, type ConveyorRequestHandler, conveyorRoutes, createRequestHandler } from "./server.ts";

const SCRIPT = `console.log("${"dashboard ".repeat(300)}");`;

describe("the dashboard's files", () => {
  let dir: string;
  let conveyor: Conveyor;
  let node: FastifyInstance;
  let host: FastifyInstance;
  let handler: ConveyorRequestHandler;
  let server: Server;
  let plain: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "conveyor-dashboard-"));
    const root = join(dir, "dist");
    mkdirSync(join(root, "assets"), { recursive: true });
    writeFileSync(
      join(root, "index.html"),
      `<!doctype html><html><head><script type="module" src="./assets/app-1a2b.js"></script></head><body></body></html>`,
    );
    writeFileSync(join(root, "assets", "app-1a2b.js"), SCRIPT);
    writeFileSync(join(root, "favicon.svg"), "<svg/>");
    conveyor = new Conveyor({ database: join(dir, "c.db"), logger: pino({ level: "silent" }) });
    node = await buildServer({ conveyor, dashboard: root });
    host = Fastify();
    host.get("/", async () => "the host's own page");
    await host.register(conveyorRoutes, { prefix: "/conveyor", conveyor, dashboard: root });
    handler = await createRequestHandler({ conveyor, prefix: "/ops/conveyor", dashboard: root });
    server = createServer((request, response) => handler(request, response, () => response.end("the host's own")));
    handler.attach(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    plain = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await node.close();
    await host.close();
    await handler.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("GET / is the app's page, with its base path; a deep link gets the same page", async () => {
    for (const path of ["/", "/tasks", "/tasks/42?tab=events", "/nodes"]) {
      const reply = await node.inject(path);
      assert.equal(reply.statusCode, 200, path);
      assert.match(reply.headers["content-type"] as string, /^text\/html/);
      assert.match(reply.body, /<base href="\/">/);
      assert.match(reply.body, /app-1a2b\.js/);
      assert.equal(reply.headers["cache-control"], "no-cache");
    }
  });

  it("assets are cached for good, compressed when the client accepts it, revalidated by ETag", async () => {
    const reply = await node.inject({ url: "/assets/app-1a2b.js", headers: { "accept-encoding": "gzip, br" } });
    assert.equal(reply.statusCode, 200);
    assert.equal(reply.headers["content-encoding"], "gzip");
    assert.match(reply.headers["cache-control"] as string, /immutable/);
    assert.ok(reply.rawPayload.length < SCRIPT.length / 4);
    const again = await node.inject({ url: "/assets/app-1a2b.js", headers: { "if-none-match": reply.headers.etag! } });
    assert.equal(again.statusCode, 304);
    assert.equal((await node.inject("/favicon.svg")).headers["content-type"], "image/svg+xml");
  });

  it("the API's unknown paths and missing files stay JSON 404s", async () => {
    for (const path of ["/api/nope", "/api", "/assets/gone.js", "/missing.png"]) {
      const reply = await node.inject(path);
      assert.equal(reply.statusCode, 404, path);
      assert.equal(reply.json().error.code, "not_found");
    }
    assert.equal((await node.inject({ method: "POST", url: "/tasks" })).statusCode, 404);
  });

  it("as a Fastify plugin under a prefix: the page's base is the prefix, the API is under it, the host keeps /", async () => {
    assert.equal((await host.inject("/")).body, "the host's own page");
    const page = await host.inject("/conveyor/tasks/7");
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /<base href="\/conveyor\/">/);
    assert.equal((await host.inject("/conveyor/assets/app-1a2b.js")).body, SCRIPT);
    assert.equal((await host.inject("/conveyor/api/queues")).statusCode, 200);
    assert.equal((await host.inject("/conveyor/api/nope")).json().error.code, "not_found");
    // The plugin's strict validation holds in the host app too (its default Ajv would coerce "5").
    const bad = await host.inject({
      method: "POST",
      url: "/conveyor/api/tasks",
      payload: { type: "x", priority: "5" },
    });
    assert.equal(bad.statusCode, 400);
  });

  it("as a node:http handler under a prefix, with the live stream's WebSocket", async () => {
    assert.equal(await (await fetch(`${plain}/elsewhere`)).text(), "the host's own");
    const page = await fetch(`${plain}/ops/conveyor/queues`);
    assert.match(await page.text(), /<base href="\/ops\/conveyor\/">/);
    assert.equal((await fetch(`${plain}/ops/conveyor/api/tasks`)).status, 200);
    const socket = new WebSocket(`${plain.replace("http", "ws")}/ops/conveyor/api/live`);
    const welcome = await new Promise<{ type: string }>((resolve, reject) => {
      socket.onmessage = (message) => resolve(JSON.parse(String(message.data)));
      socket.onerror = () => reject(new Error("the WebSocket failed"));
    });
    socket.close();
    assert.equal(welcome.type, "welcome");
  });
});
