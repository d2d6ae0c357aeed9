/**
 * One node of the download manager: a Conveyor node (its task types in jobs.ts) and its HTTP server (plain
 * node:http), with Conveyor's live stream mounted beside the example's routes for the page:
 *
 *   GET    /                      the page (sets the signed session cookie when absent)
 *   POST   /download              201 the new download (pending); 409 when this user has one (on any node)
 *   GET    /download              200 the download; 404
 *   DELETE /download              204; the download is gone at once, its job stopped wherever it runs
 *   GET    /download/events       SSE: `update` (the download), `progress`, `removed`; resumable with Last-Event-ID
 *   GET    /downloads/<id>.pdf    the generated PDF (its owner only, while it is ready)
 *   GET    /cluster               the nodes as Conveyor sees them
 *   /api/live, /api/live/sse, /api/live/client.js   Conveyor's live stream (subscription tokens only: its API token
 *                                 is a random one nobody has, so no task or node channel, and no /api, is open)
 *
 * Errors are `{"error": {"code", "message"}}` with a 4xx; a 409 carries the existing download too.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { Conveyor, type ConveyorRequestHandler, createRequestHandler, type LogEvent } from "../../src/index.ts";
import type { DownloadsConfig } from "./config.ts";
import {
  activeTask,
  asJson,
  CLUSTER_CHANNEL,
  currentDownload,
  DOWNLOAD_QUEUE,
  DOWNLOAD_TYPE,
  type Download,
  type DownloadMessage,
  downloadChannel,
  downloadKey,
  type JobData,
  type LogPosition,
  runningNode,
} from "./download.ts";
import { clusterNodes, defineJobs, type Log, logMembership } from "./jobs.ts";
import { renderPage } from "./page.ts";
import { downloadPdf } from "./pdf.ts";
import { deriveKey, ID_PATTERN, newId, sessionOf } from "./session.ts";

const JSON_TYPE = "application/json; charset=utf-8";
/** How long a page's subscription token lasts (a page older than that reloads itself to get a new one). */
const TOKEN_TTL_MS = 24 * 3600 * 1000;
/** SSE: a ping (with the position, as its id) this often, so idle connections stay open and resumable. */
const SSE_PING_MS = 15_000;
/** SSE: a client that lets this much pile up unread is cut off (it resumes with Last-Event-ID). */
const SSE_MAX_BUFFER = 1024 * 1024;
const LIVE_PATHS = new Set(["/api/live", "/api/live/sse", "/api/live/client.js"]);
const POSITION_TEXT = /^([A-Za-z0-9_-]{1,64}):(\d{1,15})$/;

type HttpError = { status: number; code: string; message: string; extra?: Record<string, unknown> };

function httpError(status: number, code: string, message: string, extra?: Record<string, unknown>): HttpError {
  return { status, code, message, ...(extra === undefined ? {} : { extra }) };
}

function isHttpError(value: unknown): value is HttpError {
  return typeof value === "object" && value !== null && "status" in value && "code" in value;
}

export type RunningDownloads = {
  readonly conveyor: Conveyor;
  readonly server: Server;
  readonly port: number;
  /** Stop answering, close the live connections, stop the node (its jobs go to other nodes, or the next start). */
  stop(): Promise<void>;
};

/** Starts one node: Conveyor, the task types, the HTTP server. */
export async function startDownloads(
  config: DownloadsConfig,
  log: Log = (line) => console.log(line),
): Promise<RunningDownloads> {
  const postgres = /^postgres(ql)?:\/\//.test(config.database);
  if (!postgres) mkdirSync(config.dataDir, { recursive: true });
  const conveyor = new Conveyor({
    database: config.database,
    ...(postgres ? { schema: config.schema } : {}),
    ...(config.amqp === undefined ? {} : { amqp: config.amqp }),
    nodeName: config.nodeName,
    version: config.appVersion,
    liveSecret: deriveKey(config.sessionSecret, "live"),
    logger: pino({ level: config.logLevel }),
    queues: { [DOWNLOAD_QUEUE]: { concurrency: 100 }, singletons: { concurrency: 2 } },
    shutdownGraceMs: config.shutdownGraceMs,
    ...(config.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: config.heartbeatIntervalMs }),
    ...(config.deadAfterBeats === undefined ? {} : { deadAfterBeats: config.deadAfterBeats }),
    ...(config.pollIntervalMs === undefined ? {} : { pollIntervalMs: config.pollIntervalMs }),
  });
  defineJobs(conveyor, config, log);
  // Built before the node starts heartbeating (compiling its schemas takes a moment), as `conveyor start` does.
  const live = await createRequestHandler({ conveyor, token: randomBytes(24).toString("base64url"), dashboard: false });
  const app = new DownloadsApp(conveyor, config, live);
  const server = createServer((req, res) => app.handle(req, res));
  server.on("upgrade", (req, socket, head) => {
    if (pathOf(req) !== "/api/live" || !live.upgrade(req, socket, head)) socket.destroy();
  });
  let stopMembership: (() => void) | null = null;
  try {
    await conveyor.start();
    stopMembership = await logMembership(conveyor, log);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(config.port, config.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    stopMembership?.();
    await live.close().catch(() => {});
    await conveyor.stop();
    throw error;
  }
  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      app.closeStreams();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 1000);
      force.unref();
      await live.close();
      await closed;
      clearTimeout(force);
      stopMembership?.();
      await conveyor.stop();
    })());
  return { conveyor, server, port: (server.address() as AddressInfo).port, stop };
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? "/").split("?", 1)[0]!;
}

class DownloadsApp {
  readonly #conveyor: Conveyor;
  readonly #config: DownloadsConfig;
  readonly #live: ConveyorRequestHandler;
  readonly #streams = new Set<() => void>();

  constructor(conveyor: Conveyor, config: DownloadsConfig, live: ConveyorRequestHandler) {
    this.#conveyor = conveyor;
    this.#config = config;
    this.#live = live;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.#route(req, res).catch((error: unknown) => {
      if (isHttpError(error)) return sendError(res, error);
      console.error("downloads: request failed:", error);
      sendError(res, httpError(500, "internal_error", "something went wrong on this node"));
    });
  }

  /** Ends every open SSE stream (on stop). */
  closeStreams(): void {
    for (const close of this.#streams) close();
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    if (LIVE_PATHS.has(path)) {
      this.#live(req, res);
      return;
    }
    // The seed's AuthPlug: every request has a user, new when its cookie is missing, tampered with or expired.
    const { session, cookie } = sessionOf(this.#config.sessionSecret, req.headers.cookie);
    if (cookie !== null) res.setHeader("set-cookie", cookie);
    const userId = session.userId;
    const method = req.method ?? "GET";
    const reading = method === "GET" || method === "HEAD";
    if (path === "/") {
      if (!reading) throw methodNotAllowed(res, "GET, HEAD");
      return this.#page(res, userId);
    }
    if (path === "/download") {
      if (reading) return this.#getDownload(res, userId);
      if (method === "POST") return this.#postDownload(res, userId);
      if (method === "DELETE") return this.#deleteDownload(res, userId);
      throw methodNotAllowed(res, "GET, HEAD, POST, DELETE");
    }
    if (path === "/download/events") {
      if (method !== "GET") throw methodNotAllowed(res, "GET");
      return this.#events(req, res, url, userId);
    }
    if (path === "/cluster") {
      if (!reading) throw methodNotAllowed(res, "GET, HEAD");
      return this.#cluster(res);
    }
    const pdf = /^\/downloads\/([^/]*)\.pdf$/.exec(path);
    if (pdf !== null) {
      if (!reading) throw methodNotAllowed(res, "GET, HEAD");
      return this.#pdf(res, userId, pdf[1]!);
    }
    throw httpError(404, "not_found", `no route for ${method} ${path}`);
  }

  // ---- the page ----------------------------------------------------------------------------------------------------

  async #page(res: ServerResponse, userId: string): Promise<void> {
    const conveyor = this.#conveyor;
    // From the position read first, not the download's history's end: the page also follows `cluster`, whose messages
    // in between must not be skipped. It may hear a step of its download again; it keeps the furthest.
    const since = await conveyor.live.position();
    const current = await currentDownload(conveyor, userId, this.#config);
    const model = {
      download: current?.download ?? null,
      percent: current?.download.state === "processing" ? current.history.percent : 0,
      nodes: await clusterNodes(conveyor),
      node: conveyor.nodeName,
      version: this.#config.appVersion,
      userId,
      channels: [downloadChannel(userId), CLUSTER_CHANNEL],
      token: conveyor.live.token({ channels: [downloadChannel(userId), CLUSTER_CHANNEL], ttlMs: TOKEN_TTL_MS }),
      since,
    };
    const nonce = randomBytes(16).toString("base64");
    const html = renderPage(model, nonce);
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": Buffer.byteLength(html),
      "cache-control": "no-store",
      "content-security-policy": `default-src 'none'; script-src 'self' 'nonce-${nonce}'; style-src 'unsafe-inline'; img-src data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      "x-content-type-options": "nosniff",
      "referrer-policy": "same-origin",
    });
    res.end(html);
  }

  /**
   * The user's download and the log position it is consistent with: a subscription from there gets every change
   * after what the snapshot shows (the position is read first, and the download's history goes at least as far).
   */
  async #snapshot(userId: string) {
    const position = await this.#conveyor.live.position();
    const current = await currentDownload(this.#conveyor, userId, this.#config);
    const offset = Math.max(position.offset, current?.history.offset ?? 0);
    return { since: { epoch: position.epoch, offset }, current };
  }

  // ---- /download ---------------------------------------------------------------------------------------------------

  async #getDownload(res: ServerResponse, userId: string): Promise<void> {
    const current = await currentDownload(this.#conveyor, userId, this.#config);
    if (current === null) throw notFound();
    sendJson(res, 200, current.download);
  }

  async #postDownload(res: ServerResponse, userId: string): Promise<void> {
    const conveyor = this.#conveyor;
    for (let round = 0; round < 2; round++) {
      const since: LogPosition = await conveyor.live.position();
      const data: JobData = { id: newId(), user_id: userId, requested_at: Date.now(), since };
      const [outcome] = await conveyor.enqueueMany([
        { type: DOWNLOAD_TYPE, queue: DOWNLOAD_QUEUE, data: asJson(data), key: downloadKey(userId) },
      ]);
      const task = outcome!.task;
      if (outcome!.created) {
        const download: Download = {
          id: data.id,
          user_id: userId,
          state: "pending",
          file_url: null,
          node: await runningNode(conveyor, task),
        };
        return sendJson(res, 201, download);
      }
      const current = await currentDownload(conveyor, userId, this.#config);
      if (current !== null) {
        throw httpError(409, "download_exists", "this user already has a download: one at a time", {
          download: current.download,
        });
      }
      // The key is held by a job whose download is over (expired while its node was dying, and not yet taken over):
      // it is stopped, and the request goes ahead.
      await conveyor.cancel(task.id, "expired");
    }
    throw httpError(409, "download_exists", "this user's previous download is still being cleared up: try again");
  }

  async #deleteDownload(res: ServerResponse, userId: string): Promise<void> {
    const conveyor = this.#conveyor;
    const current = await currentDownload(conveyor, userId, this.#config);
    const task = await activeTask(conveyor, userId);
    if (task !== null) await conveyor.cancel(task.id, "deleted by its user");
    if (current !== null) {
      // A failed one is only a finished task: delete it, so that it stops showing as `error` at once.
      if (current.task.state === "failed") await conveyor.bulk("delete", [current.task.id]);
      const message: DownloadMessage = { type: "removed", id: current.download.id, user_id: userId, reason: "deleted" };
      await conveyor.publish(downloadChannel(userId), asJson(message));
    }
    res.writeHead(204, { "cache-control": "no-store" });
    res.end();
  }

  // ---- /download/events ------------------------------------------------------------------------------------------

  async #events(req: IncomingMessage, res: ServerResponse, url: URL, userId: string): Promise<void> {
    const conveyor = this.#conveyor;
    const header = req.headers["last-event-id"];
    const text = typeof header === "string" && header !== "" ? header : url.searchParams.get("last_event_id");
    let resumeFrom: LogPosition | null = null;
    if (text !== null && text !== "") {
      const match = POSITION_TEXT.exec(text);
      if (match === null) {
        throw httpError(400, "invalid_last_event_id", "Last-Event-ID must be an id this stream sent: <epoch>:<offset>");
      }
      resumeFrom = { epoch: match[1]!, offset: Number(match[2]) };
    }
    const channel = downloadChannel(userId);
    let open = false;
    const held: LogEvent[] = [];
    let epoch = "";
    const write = (chunk: string) => {
      if (res.writableLength > SSE_MAX_BUFFER) return close();
      res.write(chunk);
    };
    const forward = (event: LogEvent) => {
      const frame = sseFrame(event.data as DownloadMessage | null);
      if (frame !== null) write(`id: ${epoch}:${event.offset}\nevent: ${frame.event}\ndata: ${frame.data}\n\n`);
    };
    const listener = (event: LogEvent) => (open ? forward(event) : held.push(event));

    // Resume where the client was, if the log still has everything since; otherwise (or on a first connection) start
    // from the download as it is now, then everything after it.
    let subscription =
      resumeFrom === null ? null : await conveyor.subscribe([channel], { since: resumeFrom }, listener);
    let snapshot: Download | null = null;
    let snapshotAt: LogPosition | null = null;
    if (subscription === null || !subscription.recovered) {
      subscription?.close();
      held.length = 0;
      const { since, current } = await this.#snapshot(userId);
      snapshot = current?.download ?? null;
      snapshotAt = since;
      subscription = await conveyor.subscribe([channel], { since }, listener);
    }
    epoch = subscription.position.epoch;
    const sub = subscription;
    let closed = false;
    const ping = setInterval(() => write(`id: ${epoch}:${sub.offset}\nevent: ping\ndata: {}\n\n`), SSE_PING_MS);
    const close = () => {
      if (closed) return;
      closed = true;
      clearInterval(ping);
      sub.close();
      this.#streams.delete(close);
      res.end();
    };
    this.#streams.add(close);
    req.on("close", close);
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    write("retry: 1000\n\n");
    if (snapshot !== null && snapshotAt !== null) {
      write(`id: ${snapshotAt.epoch}:${snapshotAt.offset}\nevent: update\ndata: ${JSON.stringify(snapshot)}\n\n`);
    }
    open = true;
    for (const event of held.splice(0)) forward(event);
  }

  // ---- the PDF, the cluster ----------------------------------------------------------------------------------------

  async #pdf(res: ServerResponse, userId: string, id: string): Promise<void> {
    if (!ID_PATTERN.test(id)) throw httpError(404, "download_not_found", "no such download");
    const current = await currentDownload(this.#conveyor, userId, this.#config);
    if (current === null || current.download.id !== id || current.download.state !== "ready") {
      throw httpError(404, "download_not_found", "no such download ready for this user");
    }
    const pdf = downloadPdf({
      id,
      userId,
      node: current.history.last?.node ?? current.download.node,
      readyAt: new Date(current.history.stateAt),
    });
    res.writeHead(200, {
      "content-type": "application/pdf",
      "content-length": pdf.length,
      "content-disposition": `attachment; filename="${id}.pdf"`,
      "cache-control": "private, no-store",
    });
    res.end(pdf);
  }

  async #cluster(res: ServerResponse): Promise<void> {
    const nodes = await clusterNodes(this.#conveyor);
    const leader = nodes.find((node) => node.leader)?.name ?? null;
    sendJson(res, 200, { node: this.#conveyor.nodeName, leader, nodes });
  }
}

/** The SSE frame of a message on the user's channel. */
function sseFrame(message: DownloadMessage | null): { event: string; data: string } | null {
  if (message === null || typeof message !== "object") return null;
  switch (message.type) {
    case "update":
      return { event: "update", data: JSON.stringify(message.download) };
    case "progress":
      return {
        event: "progress",
        data: JSON.stringify({ id: message.id, percent: message.percent, node: message.node }),
      };
    case "removed":
      return {
        event: "removed",
        data: JSON.stringify({ id: message.id, user_id: message.user_id, reason: message.reason }),
      };
    default:
      return null;
  }
}

function notFound(): HttpError {
  return httpError(404, "download_not_found", "this user has no download");
}

function methodNotAllowed(res: ServerResponse, allow: string): HttpError {
  res.setHeader("allow", allow);
  return httpError(405, "method_not_allowed", `use ${allow}`);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": JSON_TYPE,
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

function sendError(res: ServerResponse, error: HttpError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, error.status, { error: { code: error.code, message: error.message, ...error.extra } });
}
