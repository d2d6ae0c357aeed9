/**
 * A Conveyor node with dispatch, in a process of its own, for one workload of the dispatch bench:
 *
 * - `deliver`: N messages are sent to a topic with one publisher (the receiver) before the node starts; the clock
 *   runs from the start of the node until the store says N deliveries are delivered, each with its attempt recorded
 *   (a counter of attempts this node recorded only says when to start asking, every 5 ms). Delivery tasks run at
 *   `concurrency`, as the bare loop posts.
 * - `ingest`: M messages through POST /api/bulk_messages (batches of 1,000, one request after another) to a topic
 *   with 3 active publishers, the delivery queue paused so that the node only ingests: every message, its 3
 *   deliveries and their tasks written, in one transaction per request.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import pino from "pino";
import { buildServer, Conveyor, Dispatch } from "../../src/index.ts";
import { ATTRIBUTES, benchPayload } from "./settings.ts";

export type NodeJob = {
  workload: "deliver" | "ingest";
  store: "sqlite" | "postgres";
  pgUrl: string;
  schema: string;
  url: string;
  n: number;
  concurrency: number;
};

const BATCH = 1000;

/** Counts in the store, read beside the node: what is durable, not what the node believes. */
async function storeCounter(job: NodeJob, file: string) {
  if (job.store === "sqlite") {
    const db = new DatabaseSync(file, { readOnly: true });
    const one = (sql: string) => Number((db.prepare(sql).get() as { n: number }).n);
    return {
      delivered: async () => one("SELECT count(*) AS n FROM deliveries WHERE state = 'delivered'"),
      count: async (table: string) => one(`SELECT count(*) AS n FROM ${table}`),
      close: async () => db.close(),
    };
  }
  const client = new pg.Client({ connectionString: job.pgUrl });
  await client.connect();
  const one = async (sql: string) => Number((await client.query(sql)).rows[0].n);
  return {
    delivered: () => one(`SELECT count(*) AS n FROM "${job.schema}".deliveries WHERE state = 'delivered'`),
    count: (table: string) => one(`SELECT count(*) AS n FROM "${job.schema}".${table}`),
    close: () => client.end(),
  };
}

async function run(job: NodeJob) {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-bench-dispatch-"));
  const file = join(dir, "conveyor.db");
  const conveyor = new Conveyor({
    ...(job.store === "sqlite" ? { database: file } : { database: job.pgUrl, schema: job.schema }),
    concurrency: job.concurrency,
    batchSize: 50,
    logger: pino({ level: "silent" }),
  });
  const dispatch = new Dispatch(conveyor, { allowNets: "127.0.0.0/8" });
  try {
    const result =
      job.workload === "deliver"
        ? await deliver(job, conveyor, dispatch, file)
        : await ingest(job, conveyor, dispatch, file);
    return result;
  } finally {
    await conveyor.stop();
    await dispatch.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function deliver(job: NodeJob, conveyor: Conveyor, dispatch: Dispatch, file: string) {
  await dispatch.createTopic({ name: "bench", originHost: "http://127.0.0.1:9/" });
  await dispatch.createPublisher({ topic: "bench", target: job.url, type: "http", active: true, seconds_timeout: 30 });
  for (let from = 0; from < job.n; from += BATCH) {
    const batch = [];
    for (let i = from; i < Math.min(job.n, from + BATCH); i++)
      batch.push({ payload: benchPayload(i), attributes: ATTRIBUTES });
    await dispatch.send("bench", batch);
  }
  let attempted = 0;
  let failed = 0;
  dispatch.events.on("delivery:attempted", (e) => {
    attempted++;
    if (e.outcome !== "delivered") failed++;
  });
  const counter = await storeCounter(job, file);
  const started = performance.now();
  await conveyor.start();
  await dispatch.start();
  for (;;) {
    if (attempted >= job.n && (await counter.delivered()) >= job.n) break;
    if (failed > 0) throw new Error(`${failed} attempts failed`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const seconds = (performance.now() - started) / 1000;
  const attempts = await counter.count("delivery_attempts");
  await counter.close();
  return { rate: job.n / seconds, seconds, attempts, delivered: job.n };
}

async function ingest(job: NodeJob, conveyor: Conveyor, dispatch: Dispatch, file: string) {
  await dispatch.createTopic({ name: "bench", originHost: "http://127.0.0.1:9/" });
  for (const path of ["/a", "/b", "/c"])
    await dispatch.createPublisher({
      topic: "bench",
      target: job.url.replace(/\/[^/]*$/, path),
      type: "http",
      active: true,
    });
  await conveyor.start();
  await dispatch.start();
  await conveyor.pauseQueue("dispatch");
  const app = await buildServer({ conveyor, dashboard: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address() as { port: number };
  const endpoint = `http://127.0.0.1:${address.port}/api/bulk_messages`;
  const bodies: string[] = [];
  for (let from = 0; from < job.n; from += BATCH) {
    const payload = [];
    for (let i = from; i < Math.min(job.n, from + BATCH); i++) payload.push(benchPayload(i));
    bodies.push(JSON.stringify({ topic: "bench", attributes: ATTRIBUTES, payload }));
  }
  const started = performance.now();
  for (const body of bodies) {
    const response = await fetch(endpoint, { method: "POST", headers: { "content-type": "application/json" }, body });
    if (response.status !== 201) throw new Error(`bulk_messages answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  }
  const seconds = (performance.now() - started) / 1000;
  await app.close();
  const counter = await storeCounter(job, file);
  const messages = await counter.count("messages");
  const deliveries = await counter.count("deliveries");
  await counter.close();
  if (messages !== job.n || deliveries !== 3 * job.n)
    throw new Error(`ingested ${messages} messages and ${deliveries} deliveries, not ${job.n} and ${3 * job.n}`);
  return { rate: job.n / seconds, seconds, messages, deliveries };
}

process.once("message", async (job: NodeJob) => {
  try {
    const result = await run(job);
    process.send?.({ kind: "done", ...result }, () => process.exit(0));
  } catch (error) {
    process.send?.({ kind: "error", message: error instanceof Error ? error.stack : String(error) }, () =>
      process.exit(1),
    );
  }
});
