/**
 * One ZTD instance, engine or worker: its HTTP server (plain node:http) with the page, the page's script and the
 * Phoenix socket; `startTodo(config)` wires it together (server.ts and the tests use it).
 *
 *   GET /                  200 text/html, the page (406 when the client accepts no HTML, as the seed's pipeline)
 *                          a worker whose engine does not answer its RPC within 2 s: 503, not the seed's 500
 *   GET /assets/todo.js    the page's script
 *   /socket/websocket      the Phoenix socket (phoenix.ts), topic todo_events
 *   anything else          404 "Not Found"
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { LinkLog } from "./amqp.ts";
import type { TodoConfig } from "./config.ts";
import { Engine } from "./engine.ts";
import { renderError, renderPage, SCRIPT_PATH, pageScript } from "./page.ts";
import { PhoenixSocketServer } from "./phoenix.ts";
import { RpcTimeout, Worker } from "./worker.ts";

export type StartOptions = TodoConfig & {
  log?: LinkLog;
  /** A name for RabbitMQ's connection list. */
  name?: string;
  /** Worker: how long a change may wait for the engine (default 60 s). */
  changeDeadlineMs?: number;
};

export type RunningTodo = {
  readonly mode: TodoConfig["mode"];
  readonly port: number;
  readonly url: string;
  readonly server: Server;
  readonly phoenix: PhoenixSocketServer;
  readonly engine: Engine | null;
  readonly worker: Worker | null;
  /** Closes the sockets and the server, then the engine or worker. Idempotent. */
  stop(): Promise<void>;
};

const HTML = "text/html; charset=utf-8";

export async function startTodo(options: StartOptions): Promise<RunningTodo> {
  const log: LinkLog = options.log ?? ((level, message) => console[level === "debug" ? "debug" : level](message));
  let engine: Engine | null = null;
  let worker: Worker | null = null;
  if (options.mode === "engine") {
    engine = new Engine({
      database: options.database,
      schema: options.schema,
      amqpUrl: options.amqpUrl,
      log,
      ...(options.name === undefined ? {} : { name: options.name }),
    });
    await engine.start();
  } else {
    worker = new Worker({
      amqpUrl: options.amqpUrl,
      log,
      ...(options.name === undefined ? {} : { name: options.name }),
      ...(options.changeDeadlineMs === undefined ? {} : { changeDeadlineMs: options.changeDeadlineMs }),
    });
    worker.start();
  }
  const topic = (engine ?? worker)!.topic;
  const phoenix = new PhoenixSocketServer({
    topics: { todo_events: topic },
    log: (level, message) => log(level, `phoenix: ${message}`),
  });
  const list = async () => {
    if (engine !== null) return engine.snapshot();
    return worker!.all();
  };
  const server = createServer((req, res) => {
    route(req, res, options.mode, list).catch((error: unknown) => {
      if (error instanceof RpcTimeout) {
        res.setHeader("retry-after", "2");
        send(res, 503, renderError(503, "Service Unavailable", "The engine did not answer within 2 seconds."));
      } else {
        log("error", `GET ${req.url} failed: ${(error as Error).stack ?? String(error)}`);
        send(res, 500, renderError(500, "Internal Server Error", "Something went wrong on our side."));
      }
    });
  });
  server.on("upgrade", (req, socket, head) => phoenix.handleUpgrade(req, socket, head));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    await (engine ?? worker)!.stop();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  let stopping: Promise<void> | null = null;
  return {
    mode: options.mode,
    port,
    url: `http://127.0.0.1:${port}`,
    server,
    phoenix,
    engine,
    worker,
    stop: () =>
      (stopping ??= (async () => {
        phoenix.close();
        await closeServer(server);
        await (engine ?? worker)!.stop();
      })()),
  };
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  mode: string,
  list: () => Promise<{ items: import("./todo.ts").Item[]; position: import("./engine.ts").Position | null }>,
): Promise<void> {
  const path = (req.url ?? "/").split("?", 1)[0]!;
  const get = req.method === "GET" || req.method === "HEAD";
  if (get && path === "/") {
    if (!acceptsHtml(req.headers.accept)) {
      return send(res, 406, renderError(406, "Not Acceptable", "This page is HTML only."));
    }
    const { items, position } = await list();
    return send(res, 200, renderPage({ items, mode, position }), { "cache-control": "no-store" });
  }
  if (get && path === SCRIPT_PATH) {
    const script = await pageScript();
    if (req.headers["if-none-match"] === script.etag) return send(res, 304, "", { etag: script.etag });
    return send(res, 200, script.code, {
      "content-type": "text/javascript; charset=utf-8",
      etag: script.etag,
      "cache-control": "no-cache",
    });
  }
  return send(res, 404, renderError(404, "Not Found", "There is nothing at this address."));
}

/** As Phoenix's `accepts ["html"]`: no Accept header, or one that allows text/html. */
export function acceptsHtml(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === "") return true;
  return accept.split(",").some((part) => {
    const [type = "", ...params] = part.trim().toLowerCase().split(";");
    const refused = params.some((param) => /^\s*q\s*=\s*0(\.0*)?\s*$/.test(param));
    return !refused && ["*/*", "text/*", "text/html"].includes(type.trim());
  });
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": HTML, "content-length": Buffer.byteLength(body), ...headers });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), 1000);
  force.unref();
  await closed;
  clearTimeout(force);
}
