/**
 * What the example's tests share: real node processes (`server.ts`, as `npm run example:downloads` starts it), a
 * browser-like HTTP client with its cookie, and an SSE reader that records every frame with the time it came.
 * Every wait is on a line of output or a frame, bounded, and fails with what the process said last.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WatchedProcess } from "../../test/support/watched-process.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const SERVER = join(REPO, "examples/downloads/server.ts");
export const SECRET = "test-session-secret-0123456789";
const LISTENING = /^Download manager listening on http:\/\/localhost:(\d+) /;

export class DownloadsNode extends WatchedProcess {
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Resolves once it listens (its port is known then). */
  async ready(timeoutMs = 30_000): Promise<this> {
    const line = await this.until(
      "the HTTP server to listen",
      () => this.lines.find((l) => LISTENING.test(l.text)),
      timeoutMs,
    );
    this.port = Number(LISTENING.exec(line.text)![1]);
    return this;
  }

  /** Plain lines (not Conveyor's JSON log) equal to `text`, from line index `from` on. */
  said(text: string, from = 0): { at: number; index: number }[] {
    const out: { at: number; index: number }[] = [];
    for (let i = from; i < this.lines.length; i++)
      if (this.lines[i]!.text === text) out.push({ at: this.lines[i]!.at, index: i });
    return out;
  }

  waitFor(text: string, timeoutMs: number, from = 0): Promise<{ at: number; index: number }> {
    return this.until(`the line "${text}"`, () => this.said(text, from)[0], timeoutMs);
  }
}

/** A set of nodes for one test file: all killed, and their scratch folders removed, at the end. */
export class Nodes {
  readonly all: DownloadsNode[] = [];
  readonly #dirs: string[] = [];

  tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), "downloads-test-"));
    this.#dirs.push(dir);
    return dir;
  }

  /** Spawns `server.ts` with the environment given (on top of a clean one: PORT 0, a secret, warn logs). */
  spawn(name: string, env: Record<string, string>): DownloadsNode {
    const base: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !key.startsWith("CONVEYOR_") && !key.startsWith("DOWNLOAD_")) base[key] = value;
    }
    const node = new DownloadsNode(name, [SERVER], {
      cwd: REPO,
      env: {
        ...base,
        PORT: "0",
        HOST: "127.0.0.1",
        NODE_NAME: name,
        SESSION_SECRET: SECRET,
        CONVEYOR_LOG_LEVEL: "warn",
        ...env,
      },
    });
    this.all.push(node);
    return node;
  }

  start(name: string, env: Record<string, string>): Promise<DownloadsNode> {
    return this.spawn(name, env).ready();
  }

  async close(): Promise<void> {
    for (const node of this.all) {
      if (node.alive) {
        node.process.kill("SIGKILL");
        await node.exited;
      }
    }
    for (const dir of this.#dirs) rmSync(dir, { recursive: true, force: true });
  }
}

export type Reply = { status: number; headers: Headers; text: string; json: any };

/** A user: one session cookie, sent to whichever node it talks to (as a browser behind a balancer would). */
export class User {
  cookie: string | null = null;

  constructor(cookie: string | null = null) {
    this.cookie = cookie;
  }

  get userId(): string | null {
    if (this.cookie === null) return null;
    const payload = this.cookie.split("=")[1]!.split(".")[0]!;
    return (JSON.parse(Buffer.from(payload, "base64url").toString()) as { u: string }).u;
  }

  async request(
    node: { url: string },
    method: string,
    path: string,
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    const response = await fetch(node.url + path, {
      method,
      headers: { ...(this.cookie === null ? {} : { cookie: this.cookie }), ...headers },
      signal: AbortSignal.timeout(10_000),
    });
    const set = response.headers.get("set-cookie");
    if (set !== null) this.cookie = set.split(";")[0]!;
    const text = await response.text();
    let json: unknown = null;
    if ((response.headers.get("content-type") ?? "").startsWith("application/json")) json = JSON.parse(text);
    return { status: response.status, headers: response.headers, text, json };
  }

  /** The page's boot data (its download, the log position, the subscription token…), from GET /. */
  async page(node: { url: string }): Promise<any> {
    const reply = await this.request(node, "GET", "/");
    const json = /<script type="application\/json" id="boot">(.*?)<\/script>/s.exec(reply.text);
    if (json === null) throw new Error(`no boot data in the page: ${reply.status} ${reply.text.slice(0, 200)}`);
    return JSON.parse(json[1]!);
  }

  /** GET / once, so that the user has a session. */
  async visit(node: { url: string }): Promise<this> {
    await this.request(node, "GET", "/");
    return this;
  }

  events(node: { url: string }, lastEventId?: string): Promise<SseStream> {
    return SseStream.open(node.url, this.cookie, lastEventId);
  }
}

export type SseFrame = { id: string | null; event: string; data: any; at: number };

/** A reader of GET /download/events. */
export class SseStream {
  readonly frames: SseFrame[] = [];
  readonly status: number;
  readonly #controller: AbortController;
  readonly #waiters = new Set<() => void>();
  #ended = false;

  private constructor(status: number, controller: AbortController) {
    this.status = status;
    this.#controller = controller;
  }

  static open(base: string, cookie: string | null, lastEventId?: string): Promise<SseStream> {
    const headers: Record<string, string> = {};
    if (cookie !== null) headers.cookie = cookie;
    if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
    return SseStream.openUrl(`${base}/download/events`, headers);
  }

  /** Any SSE endpoint (Conveyor's own /api/live/sse too). */
  static async openUrl(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
    const controller = new AbortController();
    const response = await fetch(url, {
      headers: { accept: "text/event-stream", ...headers },
      signal: controller.signal,
    });
    const stream = new SseStream(response.status, controller);
    if (response.status !== 200 || response.body === null) {
      stream.#ended = true;
      await response.text().catch(() => {});
      return stream;
    }
    void stream.#read(response.body);
    return stream;
  }

  async #read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf("\n\n");
        while (end !== -1) {
          this.#frame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf("\n\n");
        }
      }
    } catch {
      // aborted, or the node died
    }
    this.#ended = true;
    this.#poke();
  }

  #frame(text: string): void {
    let id: string | null = null;
    let event = "message";
    const data: string[] = [];
    for (const line of text.split("\n")) {
      if (line.startsWith("id: ")) id = line.slice(4);
      else if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length === 0) return; // the retry: line
    this.frames.push({ id, event, data: JSON.parse(data.join("\n")), at: Date.now() });
    this.#poke();
  }

  #poke(): void {
    for (const waiter of this.#waiters) waiter();
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** The frames other than pings. */
  get events(): SseFrame[] {
    return this.frames.filter((frame) => frame.event !== "ping");
  }

  /** The first frame (from index `from`) that `match` accepts; fails after `timeoutMs` or when the stream ends. */
  next(what: string, match: (frame: SseFrame) => boolean, timeoutMs = 10_000, from = 0): Promise<SseFrame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.frames.slice(from).find(match);
        if (found !== undefined) return done(undefined, found);
        if (this.#ended) done(new Error(`the stream ended before ${what}; frames: ${this.describe()}`));
      };
      const timer = setTimeout(
        () => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; frames: ${this.describe()}`)),
        timeoutMs,
      );
      const done = (error?: Error, frame?: SseFrame) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (error === undefined) resolve(frame!);
        else reject(error);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** The first `update` with this state (of download `id`, when given). */
  state(state: string, id?: string, timeoutMs = 10_000): Promise<SseFrame> {
    return this.next(
      `an update to ${state}${id === undefined ? "" : ` of ${id}`}`,
      (f) => f.event === "update" && f.data.state === state && (id === undefined || f.data.id === id),
      timeoutMs,
    );
  }

  describe(): string {
    return JSON.stringify(
      this.events.map((f) => `${f.event}:${f.data.state ?? f.data.percent ?? f.data.reason ?? ""}@${f.id}`),
    );
  }

  close(): void {
    this.#controller.abort();
  }
}
