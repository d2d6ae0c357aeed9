/**
 * Test support for the HTTP tests: a real Conveyor on a temporary SQLite file, a real server listening on a
 * free port, a `call` helper over fetch, and task types a test can steer without sleeping:
 * - `echo` returns its data;
 * - `block` runs until stopped (its abort reasons are recorded);
 * - `gate` runs until the test opens its gate (`fixture.open(id, result)`);
 * - `fail` always throws, with one attempt;
 * - `side.echo` is `echo` on the queue `side`.
 * `fixture.started(id)` resolves once the task's handler has begun.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import type { Json } from "../core/task.ts";
import { Conveyor } from "../runtime/conveyor.ts";
import { buildServer, type ServerOptions } from "./server.ts";

type Deferred<T> = { promise: Promise<T>; resolve: (value: T) => void };

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Deferreds made on first use from either side, so a waiter and a signaller can come in any order. */
function deferredMap<T>() {
  const map = new Map<number, Deferred<T>>();
  return (id: number): Deferred<T> => {
    let entry = map.get(id);
    if (entry === undefined) map.set(id, (entry = deferred<T>()));
    return entry;
  };
}

export type Reply = { status: number; body: any; headers: Headers };

/** Requests to a listening server at `base`, with the answer's body parsed when it is JSON. */
export function httpCaller(base: string): (method: string, path: string, init?: CallInit) => Promise<Reply> {
  return async (method, path, init = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    let body: string | undefined = init.raw;
    if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers["content-type"] ??= "application/json";
    }
    const response = await fetch(base + path, { method, headers, body });
    const text = await response.text();
    const json = (response.headers.get("content-type") ?? "").includes("application/json");
    return { status: response.status, body: json && text !== "" ? JSON.parse(text) : text, headers: response.headers };
  };
}

export type CallInit = { body?: unknown; raw?: string; headers?: Record<string, string> };

export type Fixture = {
  conveyor: Conveyor;
  app: FastifyInstance;
  base: string;
  call(method: string, path: string, init?: CallInit): Promise<Reply>;
  started(id: number): Promise<void>;
  open(id: number, result: Json): void;
  abortReasons: Map<number, unknown>;
  close(): Promise<void>;
};

export async function startFixture(
  options: { token?: string; start?: boolean; server?: Omit<Partial<ServerOptions>, "conveyor"> } = {},
): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-http-"));
  const conveyor = new Conveyor({
    database: join(dir, "conveyor.db"),
    logger: pino({ level: "silent" }),
    shutdownGraceMs: 200,
  });
  const started = deferredMap<void>();
  const gates = deferredMap<Json>();
  const abortReasons = new Map<number, unknown>();
  conveyor.define("echo", (data: Json) => data);
  conveyor.define("side.echo", (data: Json) => data, { queue: "side" });
  conveyor.define(
    "fail",
    () => {
      throw new Error("boom");
    },
    { maxAttempts: 1 },
  );
  conveyor.define(
    "block",
    (_data, ctx) =>
      new Promise((_resolve, reject) => {
        started(ctx.id).resolve();
        ctx.signal.addEventListener(
          "abort",
          () => {
            abortReasons.set(ctx.id, ctx.signal.reason);
            reject(new Error(`stopped: ${String(ctx.signal.reason)}`));
          },
          { once: true },
        );
      }),
  );
  conveyor.define("gate", (_data, ctx) => {
    started(ctx.id).resolve();
    return gates(ctx.id).promise;
  });
  if (options.start !== false) await conveyor.start();
  const app = await buildServer({ conveyor, token: options.token ?? null, ...options.server });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address();
  if (address === null || typeof address === "string") throw new Error("the server has no port");
  const base = `http://127.0.0.1:${address.port}`;

  const call = httpCaller(base);

  return {
    conveyor,
    app,
    base,
    call,
    abortReasons,
    started: (id) => started(id).promise,
    open: (id, result) => gates(id).resolve(result),
    async close() {
      await app.close();
      await conveyor.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
