/**
 * What the todo tests share: a RabbitMQ vhost of their own (the contract fixes the exchange and queue names, so
 * concurrent runs of these tests, or anyone else's use of those names on the broker, must not meet), instances
 * started in-process, and a Phoenix client over a raw WebSocket that records every frame.
 *
 * The vhost is made with rabbitmqctl (the management API is not enabled on this machine), which also gives a broker
 * restart as its clients see it without restarting the shared broker: deleting the vhost closes every connection in
 * it and drops every queue and exchange (non-durable or not), as a restart drops the seed's non-durable ones; making
 * it again lets them reconnect into an empty broker.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { promisify } from "node:util";
import { WebSocket } from "ws";
import { amqpAvailable, amqpUrl, requireService } from "../../test/support/services.ts";
import { withTimeout } from "../../test/support/watched-process.ts";
import { type RunningTodo, type StartOptions, startTodo } from "./app.ts";

const run = promisify(execFile);
export const WAIT_MS = 10_000;
/** How long an instance may take to reach RabbitMQ (its link retries every 3 s at most). */
const UP_MS = 30_000;

let ctlProbe: Promise<boolean> | null = null;

function rabbitmqctl(...args: string[]): Promise<unknown> {
  return run("rabbitmqctl", ["-q", ...args], { timeout: 20_000 });
}

/** Whether RabbitMQ answers and rabbitmqctl can make vhosts here. */
export function vhostsAvailable(): Promise<boolean> {
  ctlProbe ??= (async () => {
    if (!(await amqpAvailable())) return false;
    try {
      await rabbitmqctl("list_vhosts");
      return true;
    } catch {
      return false;
    }
  })();
  return ctlProbe;
}

/** In a test: true when a vhost can be made; otherwise fails under CI=true or skips loudly. */
export async function requireBroker(t: TestContext): Promise<boolean> {
  return requireService(t, "RabbitMQ (with rabbitmqctl, for a vhost of the test's own)", await vhostsAvailable());
}

export type Vhost = {
  name: string;
  url: string;
  /** A broker restart as the clients see it: every connection closed, every queue and exchange gone. */
  restart(): Promise<void>;
  /** Half a restart: the broker goes away (until `up`). */
  down(): Promise<void>;
  up(): Promise<void>;
  remove(): Promise<void>;
};

export async function makeVhost(): Promise<Vhost> {
  const name = `ztd-test-${process.pid}-${randomBytes(4).toString("hex")}`;
  const base = new URL(amqpUrl());
  base.pathname = `/${encodeURIComponent(name)}`;
  const user = decodeURIComponent(base.username) || "guest";
  // A rabbitmqctl call can fail or pass its 20 s limit on a loaded machine, and a vhost not made again after a
  // restart would leave the file's later suites with none: try again.
  const up = async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        // add_vhost of a vhost that exists succeeds: an attempt that made it and failed at the permissions is fine.
        await rabbitmqctl("add_vhost", name);
        await rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*");
        return;
      } catch (error) {
        if (attempt === 5) throw new Error(`rabbitmqctl could not make vhost ${name}: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      }
    }
  };
  const down = () => rabbitmqctl("delete_vhost", name).catch(() => {});
  await up();
  return {
    name,
    url: base.toString(),
    restart: async () => {
      await down();
      await up();
    },
    down: async () => void (await down()),
    up,
    remove: async () => void (await down()),
  };
}

let fileVhostPromise: Promise<Vhost> | null = null;

/**
 * One vhost for the whole test file (deleting a vhost that held queues takes rabbitmqctl a few seconds): the
 * suites of a file run one after another and stop their instances before the next starts.
 */
export function fileVhost(): Promise<Vhost> {
  fileVhostPromise ??= makeVhost();
  return fileVhostPromise;
}

export async function removeFileVhost(): Promise<void> {
  const vhost = fileVhostPromise;
  fileVhostPromise = null;
  if (vhost !== null) await (await vhost).remove();
}

export function tempDir(prefix = "ztd-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export type Logged = { level: string; message: string }[];

/** An instance on port 0 with its log captured (`logs`). */
export async function instance(
  options: Partial<StartOptions> & Pick<StartOptions, "mode" | "amqpUrl">,
  logs: Logged = [],
): Promise<RunningTodo & { logs: Logged }> {
  const todo = await startTodo({
    port: 0,
    host: "127.0.0.1",
    database: "",
    schema: "ztd",
    log: (level, message) => logs.push({ level, message }),
    ...options,
  });
  // Bounded: a broker that never lets the instance in fails the test, with the instance's log, rather than hang it.
  const up = todo.engine !== null ? todo.engine.whenAmqpUp() : todo.worker!.whenUp();
  try {
    await withTimeout(up, UP_MS, `the ${options.mode} to reach RabbitMQ`);
  } catch (error) {
    await todo.stop();
    const log = logs.map((entry) => `  ${entry.level}: ${entry.message}`).join("\n");
    throw new Error(`${(error as Error).message}; its log:\n${log}`);
  }
  return Object.assign(todo, { logs });
}

export type Frame = { joinRef: string | null; ref: string | null; topic: string; event: string; payload: any };

/** A Phoenix client over a raw WebSocket, V2 (array frames) or V1 (object frames), recording every frame. */
export class PhoenixClient {
  readonly frames: Frame[] = [];
  readonly raw: string[] = [];
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly version: 1 | 2;
  #ref = 0;
  #waiters = new Set<() => void>();

  constructor(baseUrl: string, version: 1 | 2 = 2) {
    this.version = version;
    const url = `${baseUrl.replace(/^http/, "ws")}/socket/websocket${version === 2 ? "?vsn=2.0.0" : ""}`;
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
    });
    this.ws.on("message", (data) => {
      const text = data.toString();
      this.raw.push(text);
      const parsed = JSON.parse(text);
      this.frames.push(
        Array.isArray(parsed)
          ? { joinRef: parsed[0], ref: parsed[1], topic: parsed[2], event: parsed[3], payload: parsed[4] }
          : { joinRef: null, ref: parsed.ref, topic: parsed.topic, event: parsed.event, payload: parsed.payload },
      );
      for (const waiter of this.#waiters) waiter();
    });
    this.ws.on("close", () => {
      for (const waiter of this.#waiters) waiter();
    });
  }

  static async open(baseUrl: string, version: 1 | 2 = 2): Promise<PhoenixClient> {
    const client = new PhoenixClient(baseUrl, version);
    await client.opened;
    return client;
  }

  /** Sends a message; returns its ref. */
  send(topic: string, event: string, payload: unknown, joinRef: string | null = "1"): string {
    const ref = String(++this.#ref);
    this.ws.send(
      JSON.stringify(this.version === 2 ? [joinRef, ref, topic, event, payload] : { topic, event, payload, ref }),
    );
    return ref;
  }

  /** Resolves with the first frame (from index `from`) that matches, waiting for it. */
  next(match: (frame: Frame) => boolean, what = "a frame", from = 0, ms = WAIT_MS): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const look = () => {
        const found = this.frames.slice(from).find(match);
        if (found === undefined) return false;
        cleanup();
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; frames: ${this.raw.slice(-10).join("\n")}`));
      }, ms);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      const waiter = () => void look();
      this.#waiters.add(waiter);
      look();
    });
  }

  /** Waits until `check()` holds, looking again at every frame. */
  until(check: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
    return this.next(() => check(), what, 0, ms).then(
      () => {},
      (error) => {
        if (check()) return;
        throw error;
      },
    );
  }

  reply(ref: string, ms = WAIT_MS): Promise<Frame> {
    return this.next((f) => f.event === "phx_reply" && f.ref === ref, `the reply to ref ${ref}`, 0, ms);
  }

  async join(topic = "todo_events", payload: unknown = {}): Promise<Frame> {
    const ref = this.send(topic, "phx_join", payload, String(this.#ref + 1));
    return this.reply(ref);
  }

  async push(event: string, payload: unknown, topic = "todo_events"): Promise<Frame> {
    return this.reply(this.send(topic, event, payload));
  }

  /** The payloads of `event` frames (the seed's broadcasts), in order. */
  events(): any[] {
    return this.frames.filter((f) => f.event === "event").map((f) => f.payload);
  }

  close(): void {
    this.ws.close();
  }
}

/** A list built from events, as the seed's React client built it (insert appends, update merges, delete removes). */
export function listFrom(initial: any[], events: any[]): any[] {
  let items = initial.map((item) => ({ ...item }));
  for (const { type, data } of events) {
    if (type === "insert") items = [...items.filter((i) => i.id !== data.id), { ...data }];
    else if (type === "update") items = items.map((i) => (i.id === data.id ? { ...i, ...data } : i));
    else if (type === "delete") items = items.filter((i) => i.id !== data.id);
  }
  return items;
}
