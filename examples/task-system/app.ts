/**
 * The seed's HTTP API (`TaskApi`, contract C.3) on plain node:http, around a Conveyor node; and
 * `startTaskSystem`, which wires the node, the task type and the server together (server.ts and the
 * tests both use it).
 *
 *   GET    /tasks      200 {"tasks":[ids of running tasks, ascending]}
 *   POST   /tasks      201 {"data":<the JSON body>,"id":<int>}       bad or empty JSON: 400
 *   DELETE /tasks/:id  204, the task really stops                     not running / unknown: 404
 *   anything else      404 {"message":"Not Found!","status":404}
 */
import { mkdirSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Conveyor, type Json, type Task, ValidationError } from "../../src/index.ts";
import type { TaskSystemConfig } from "./config.ts";
import { defineTaskSystem, QUEUE, TASK_TYPE, type LogLine, type TaskSystem, type TaskSystemOptions } from "./tasks.ts";

const CONTENT_TYPE = "application/json; charset=utf-8";
/** Plug's `read_body` default length. */
export const MAX_BODY_BYTES = 8_000_000;

const NOT_FOUND = { message: "Not Found!", status: 404 };
const TASK_NOT_FOUND = { message: "Task not found!", status: 404 };

class BadRequest extends Error {
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}

/** The HTTP server of the example around `conveyor` (not listening yet). */
export function createApp(conveyor: Conveyor): Server {
  const server = createServer((req, res) => {
    route(conveyor, req, res).catch((error: unknown) => {
      if (error instanceof BadRequest) {
        if (error.status === 413) res.setHeader("connection", "close");
        send(res, error.status, { message: error.message, status: error.status });
      } else {
        console.error("task-system: request failed:", error);
        send(res, 500, { message: "Internal Server Error", status: 500 });
      }
    });
  });
  return server;
}

async function route(conveyor: Conveyor, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // Like Plug's path_info: the query string is not part of the path, and empty segments are dropped,
  // so "/tasks/" is "/tasks".
  const path = (req.url ?? "/")
    .split("?", 1)[0]!
    .split("/")
    .filter((segment) => segment !== "");
  if (path.length === 1 && path[0] === "tasks") {
    if (req.method === "GET") return send(res, 200, { tasks: await runningIds(conveyor) });
    if (req.method === "POST") {
      const data = await readJsonBody(req);
      let task: Task;
      try {
        task = await conveyor.enqueue(TASK_TYPE, data, { queue: QUEUE });
      } catch (error) {
        if (error instanceof ValidationError) throw new BadRequest(error.message);
        throw error;
      }
      return send(res, 201, { data: task.data, id: task.id });
    }
  }
  if (path.length === 2 && path[0] === "tasks" && req.method === "DELETE") {
    const id = parseId(path[1]!);
    if (id !== null && (await stopRunning(conveyor, id))) return send(res, 204);
    return send(res, 404, TASK_NOT_FOUND);
  }
  return send(res, 404, NOT_FOUND);
}

/** Ids of the example's running tasks, ascending, from the store (so every node on the same file sees them). */
async function runningIds(conveyor: Conveyor): Promise<number[]> {
  const ids: number[] = [];
  let after: number | undefined;
  for (;;) {
    const page = await conveyor.list({
      queue: QUEUE,
      type: TASK_TYPE,
      states: ["running"],
      order: "asc",
      limit: 1000,
      ...(after === undefined ? {} : { after }),
    });
    for (const task of page.tasks) ids.push(task.id);
    if (page.nextCursor === null) return ids;
    after = page.nextCursor;
  }
}

/**
 * Stop the task if it is running (the seed's `stop_task`): true if it did. A queued task that has not
 * started is left alone, as in the seed (its DELETE is a 404).
 */
async function stopRunning(conveyor: Conveyor, id: number): Promise<boolean> {
  const task = await conveyor.get(id);
  if (task === null || task.queue !== QUEUE || task.type !== TASK_TYPE || task.state !== "running") return false;
  const after = await conveyor.cancel(id, "stopped by DELETE /tasks/:id");
  // It may have finished between the two calls, in which case the cancel changed nothing.
  return after.state === "cancelled";
}

/** A decimal id that is a safe integer, or null (the seed's `String.to_integer` raised: a 500). */
function parseId(segment: string): number | null {
  if (!/^\d+$/.test(segment)) return null;
  const id = Number(segment);
  return Number.isSafeInteger(id) ? id : null;
}

async function readJsonBody(req: IncomingMessage): Promise<Json> {
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else if (!tooLarge) {
        // Answer now; the rest of the body is read and dropped, and the connection closed after the reply.
        tooLarge = true;
        chunks.length = 0;
        reject(new BadRequest(`Request body is larger than ${MAX_BODY_BYTES} bytes`, 413));
      }
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new BadRequest("Invalid JSON: the body is not valid UTF-8");
  }
  if (text.trim() === "") throw new BadRequest("Invalid JSON: the body is empty");
  try {
    return JSON.parse(text) as Json;
  } catch (error) {
    throw new BadRequest(`Invalid JSON: ${(error as Error).message}`);
  }
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (res.headersSent) return;
  if (body === undefined) {
    res.writeHead(status, { "content-type": CONTENT_TYPE });
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": CONTENT_TYPE, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

// ---- the whole example: node, task type, server -------------------------------------------------------

export type StartOptions = TaskSystemConfig & {
  log?: LogLine;
  durationMs?: TaskSystemOptions["durationMs"];
  /** Listen to the handler's events from the start (tasks left in the queue start as soon as the node does). */
  events?: TaskSystemOptions["events"];
  /** How long running tasks may finish on stop before they go back to the queue. Default 10 s. */
  shutdownGraceMs?: number;
  /** The host to listen on; default all interfaces. */
  host?: string;
};

export type RunningTaskSystem = TaskSystem & {
  readonly conveyor: Conveyor;
  readonly server: Server;
  /** The port it listens on (useful with port 0). */
  readonly port: number;
  /** Stop answering HTTP, then stop the node gracefully (see Conveyor.stop). Idempotent. */
  stop(): Promise<void>;
};

/** The SQLite file of the example in `dataDir`. */
export function databasePath(dataDir: string): string {
  return join(dataDir, "task-system.db");
}

/**
 * Start the example: a Conveyor node on `<dataDir>/task-system.db` running the queue "task-system" with
 * `poolSize` tasks at once, its HTTP server listening on `port`; logs "Worker <n> is started!" per slot.
 */
export async function startTaskSystem(options: StartOptions): Promise<RunningTaskSystem> {
  const log = options.log ?? ((line: string) => console.log(line));
  mkdirSync(options.dataDir, { recursive: true });
  const conveyor = new Conveyor({
    database: databasePath(options.dataDir),
    concurrency: options.poolSize,
    queues: { [QUEUE]: { concurrency: options.poolSize } },
    ...(options.shutdownGraceMs === undefined ? {} : { shutdownGraceMs: options.shutdownGraceMs }),
  });
  const system = defineTaskSystem(conveyor, {
    poolSize: options.poolSize,
    minSeconds: options.minSeconds,
    maxSeconds: options.maxSeconds,
    log,
    ...(options.durationMs === undefined ? {} : { durationMs: options.durationMs }),
    ...(options.events === undefined ? {} : { events: options.events }),
  });
  const server = createApp(conveyor);
  try {
    await conveyor.start();
    for (let n = 1; n <= options.poolSize; n++) log(`Worker ${n} is started!`);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    await conveyor.stop();
    throw error;
  }
  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      await closeServer(server);
      await conveyor.stop();
    })());
  return { ...system, conveyor, server, port: (server.address() as AddressInfo).port, stop };
}

/** Stop accepting connections, let requests in flight finish (1 s at most), close the idle keep-alive ones. */
async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), 1000);
  force.unref();
  await closed;
  clearTimeout(force);
}
