/**
 * The node the HTTP and live fuzzers hit: a Conveyor on SQLite (a temporary file) or PostgreSQL (a fresh schema),
 * with dispatch, its API built with `buildServer`, a few things to find (tasks, a queue, a schedule, a topic with a
 * publisher, a message), and a webhook receiver on loopback that every generated target points at.
 *
 * It never dials out, three times over: the node is not started (no workers, no scheduler, no deliveries: dispatch is
 * paused, as the store only changes through the requests under test) unless `start` asks for a running node, whose
 * deliveries go to the receiver; dispatch's SSRF guard lets only loopback through; and the tripwire of the dispatch
 * tests refuses (and records) any lookup outside loopback.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { loopbackTripwire } from "../../src/dispatch/fixtures/dispatch-node.ts";
import { Receiver } from "../../src/dispatch/fixtures/receiver.ts";
import { Dispatch } from "../../src/dispatch/dispatch.ts";
import { buildServer } from "../../src/http/server.ts";
import { Conveyor } from "../../src/runtime/conveyor.ts";
import { dropSchema, freshSchema, postgresUrl } from "../support/postgres.ts";

export type FuzzNode = {
  conveyor: Conveyor;
  dispatch: Dispatch;
  app: FastifyInstance;
  receiver: Receiver;
  /** Started: workers, scheduler and deliveries change the store by themselves. */
  running: boolean;
  /** The last lines of the server's error log. */
  errors: string[];
  /** Lookups outside loopback the tripwire refused: must stay empty. */
  dialled: string[];
  /** Ids and names that exist, for path parameters. */
  known: {
    taskIds: string[];
    queues: string[];
    schedules: string[];
    topics: string[];
    publisherIds: string[];
    messageIds: string[];
  };
  /** What the store holds, cheaply: equal before and after a request that changed nothing. */
  snapshot(): Promise<string>;
  /** Run first when the node closes (the fuzzers' own clients). */
  onClose(cleanup: () => void): void;
  close(): Promise<void>;
};

export async function fuzzNode(
  store: "sqlite" | "postgres" = "sqlite",
  options: { listen?: boolean; start?: boolean } = {},
): Promise<FuzzNode> {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-fuzz-"));
  const schema = store === "postgres" ? freshSchema("fuzz") : null;
  const conveyor = new Conveyor({
    ...(schema === null ? { database: join(dir, "conveyor.db") } : { database: postgresUrl(), schema }),
    logger: pino({ level: "silent" }),
    shutdownGraceMs: 100,
  });
  const dialled: string[] = [];
  const dispatch = new Dispatch(conveyor, {
    allowNets: "127.0.0.0/8,::1/128",
    interceptLookup: loopbackTripwire(dialled),
  });
  const receiver = await new Receiver().start();
  conveyor.define("echo", (data) => data);
  conveyor.define("side.echo", (data) => data, { queue: "side" });

  const tasks = [
    await conveyor.enqueue("echo", { n: 1 }),
    await conveyor.enqueue("side.echo", null, { queue: "side" }),
  ];
  await conveyor.schedule("nightly", { cron: "0 3 * * *", type: "echo" }).catch(() => undefined);
  await dispatch.createTopic({ name: "orders", originHost: "http://127.0.0.1:9/" });
  const publisher = await dispatch.createPublisher({
    topic: "orders",
    target: receiver.url(),
    type: "http",
    active: true,
  });
  const sent = await dispatch.send("orders", [{ payload: { order: 1 }, attributes: {} }], { idempotencyKey: null });

  // The server's error log (5xx are logged with their error), for the failure message of a case that got one.
  const errors: string[] = [];
  const stream = {
    write: (line: string) => {
      errors.push(line.slice(0, 2000));
      if (errors.length > 4) errors.shift();
    },
  };
  const app = await buildServer({ conveyor, dashboard: false, logger: { level: "error", stream } });
  await app.ready();
  if (options.start === true) {
    await conveyor.start();
    await dispatch.start();
  }
  if (options.listen === true) await app.listen({ port: 0, host: "127.0.0.1" });

  const cleanups: (() => void)[] = [];
  const inject = async (url: string) => {
    const reply = await app.inject({ method: "GET", url });
    const body = reply.json() as Record<string, unknown>;
    delete body.position;
    return body;
  };
  return {
    conveyor,
    dispatch,
    app,
    receiver,
    dialled,
    running: options.start === true,
    errors,
    known: {
      taskIds: tasks.map((t) => String(t.id)),
      queues: ["default", "side"],
      schedules: ["nightly"],
      topics: ["orders", "1"],
      publisherIds: [String(publisher.id)],
      messageIds: sent.deliveryIds.length > 0 ? ["1"] : ["1"],
    },
    async snapshot() {
      const parts = await Promise.all([
        conveyor.live.position(),
        inject("/api/queues"),
        inject("/api/schedules"),
        inject("/api/topics"),
        inject("/api/publishers?deleted=true"),
        inject("/api/messages?limit=1"),
        inject("/api/deliveries?limit=1"),
      ]);
      // A schedule's next run moves with the clock, not with the store.
      return JSON.stringify(parts, (key, value) => (key === "nextRun" ? undefined : value));
    },
    onClose: (cleanup) => void cleanups.push(cleanup),
    async close() {
      for (const cleanup of cleanups) cleanup();
      await app.close();
      await dispatch.stop();
      await conveyor.stop();
      await receiver.stop();
      if (schema !== null) await dropSchema(schema);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
