/**
 * One Conveyor node of the live bench, in a process of its own: `new Conveyor({ database, schema })` on the fresh
 * schema (its nodes hear each other over LISTEN/NOTIFY on a channel named after it) and `buildServer` on a
 * loopback port. It publishes the load, runs the drain that keeps the `tasks` channel busy, and reports its RSS,
 * its CPU and, at the end, what the log holds for each channel (to check every client against it).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { buildServer } from "../../src/http/server.ts";
import { Conveyor } from "../../src/index.ts";
import { childArgs, serve } from "./ipc.ts";
import { type PublishPlan, publishBurst, publishLoad } from "./publisher.ts";
import { epochMs, type Fingerprint, fingerprint, fold, type Histogram, histogram, record } from "./stats.ts";
import { processStats } from "./node-stats.ts";

export type ConveyorNodeArgs = { database: string; schema: string; index: number; replayLimit: number };

const TASK_TYPE = "bench.live";
/** The drain enqueues every 100 ms: rate / 10 tasks a time. */
const ENQUEUE_EVERY_MS = 100;

const args = childArgs<ConveyorNodeArgs>();

/** Tasks enqueued at a steady rate and completed by this node (a no-op handler): the busy `tasks` channel. */
class Drain {
  readonly #conveyor: Conveyor;
  #timer: NodeJS.Timeout | null = null;
  #enqueued = 0;
  #failed = 0;

  constructor(conveyor: Conveyor) {
    this.#conveyor = conveyor;
  }

  start(rate: number): void {
    const batch = Math.max(1, Math.round((rate * ENQUEUE_EVERY_MS) / 1000));
    this.#timer = setInterval(() => {
      const tasks = Array.from({ length: batch }, () => ({ type: TASK_TYPE, data: null }));
      this.#conveyor.enqueueMany(tasks).then(
        () => (this.#enqueued += batch),
        () => this.#failed++,
      );
    }, ENQUEUE_EVERY_MS);
  }

  /** Stops adding and waits until nothing is queued or running (the other node's tasks included). */
  async stop(): Promise<{ enqueued: number; failedBatches: number }> {
    if (this.#timer !== null) clearInterval(this.#timer);
    for (let i = 0; i < 300; i++) {
      const stats = await this.#conveyor.queues();
      const busy = stats.reduce((n, q) => n + q.counts.queued + q.counts.running + q.counts.scheduled, 0);
      if (busy === 0) break;
      await sleep(100);
    }
    return { enqueued: this.#enqueued, failedBatches: this.#failed };
  }
}

await serve(async () => {
  const conveyor = new Conveyor({
    database: args.database,
    schema: args.schema,
    // The catch-up client is 100,000 events behind; the default limit (10,000) would answer recovered: false.
    liveReplayLimit: args.replayLimit,
  });
  conveyor.define(TASK_TYPE, async () => null);
  await conveyor.start();
  const app = await buildServer({ conveyor });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const drain = new Drain(conveyor);
  let sent = 0;
  let probe: { latency: Histogram; close: () => void } | null = null;
  const publish = (channel: string, data: object) => {
    sent++;
    return conveyor.publish(channel, data as never);
  };
  return {
    // Its connections' names in pg_stat_activity (the store's pool, the bus's LISTEN and NOTIFY connections), so
    // that the parent can count the CPU of the backends serving this node.
    ready: { port, nodeId: conveyor.nodeId, dbNames: connectionNames(conveyor, args.schema) },
    handlers: {
      ...processStats(),
      sent: () => sent,
      position: () => conveyor.live.position(),
      publish: (plan: PublishPlan) => publishLoad(plan, publish),
      burst: (a: { channel: string; count: number; concurrency: number; firstSeq: number }) =>
        publishBurst(a.count, a.concurrency, a.firstSeq, args.index, (message) => publish(a.channel, message)),
      startTasks: ({ rate }: { rate: number }) => drain.start(rate),
      // Where the latency goes: an in-process subscriber to one channel times each event from its publish to the
      // moment this node's live feed hands it out, before any socket is written to.
      probeStart: async ({ channel }: { channel: string }) => {
        const latency = histogram();
        const subscription = await conveyor.subscribe([channel], {}, (event) =>
          record(latency, epochMs() - (event.data as { t: number }).t),
        );
        probe = { latency, close: () => subscription.close() };
      },
      probeStop: () => {
        probe?.close();
        return probe?.latency ?? histogram();
      },
      stopTasks: () => drain.stop(),
      fingerprints: ({ after }: { after: number }) => logFingerprints(conveyor, after),
    },
    cleanup: async () => {
      await app.close();
      await conveyor.stop();
    },
  };
});

/**
 * What the log holds after `after`, channel by channel (task events under `tasks`), as fingerprints: every client of
 * a channel must have received exactly this.
 */
async function logFingerprints(conveyor: Conveyor, after: number): Promise<Record<string, Fingerprint>> {
  const prints: Record<string, Fingerprint> = {};
  for (let cursor = after; ; ) {
    const events = await conveyor.store.eventList({ after: cursor, limit: 1000 });
    for (const event of events) {
      const key = event.channel ?? "tasks";
      fold((prints[key] ??= fingerprint()), event.offset);
      cursor = event.offset;
    }
    if (events.length < 1000) return prints;
  }
}

function connectionNames(conveyor: Conveyor, schema: string): string[] {
  const origin = (conveyor.bus as { origin?: string }).origin;
  const store = `conveyor-store-${schema}`.slice(0, 63);
  return origin === undefined ? [store] : [store, `conveyor-bus-${origin}`, `conveyor-bus-notify-${origin}`];
}
