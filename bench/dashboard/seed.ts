/**
 * The store the dashboard is measured on: tasks added and run by a real node, so that every table the pages read
 * (tasks, counts, the event log, stats) holds what a busy production store holds. Mostly finished: about 1% fail,
 * a few wait in the future, and the last ones stay queued in a paused queue, as a backlog would.
 */
import type { Conveyor } from "../../src/index.ts";

/** The types and queues a store of many applications' tasks would hold, with their shares. */
const MIX = [
  { type: "email.send", queue: "emails", share: 0.4 },
  { type: "image.resize", queue: "images", share: 0.3 },
  { type: "report.build", queue: "reports", share: 0.2 },
  { type: "webhook.call", queue: "default", share: 0.1 },
] as const;
/** The queue the backlog waits in (paused before it is filled). */
export const BACKLOG_QUEUE = "backlog";
const BATCH = 1000;
/** Unfinished tasks the seeding keeps at most. */
const AHEAD = 20_000;

export function defineSeedTypes(conveyor: Conveyor): void {
  for (const { type, queue } of MIX) {
    const handler = (data: { fail?: boolean }) => {
      if (data.fail === true) throw new Error(`${type} failed: the remote side said no`);
      return { ok: true };
    };
    conveyor.define(type, handler, { queue, maxAttempts: 1 });
  }
  conveyor.define("backlog.item", () => null, { queue: BACKLOG_QUEUE });
}

/** The i-th task of the store: its type by the mix, one in a hundred failing, one in ten with a key. */
function taskAt(i: number) {
  let r = (i * 0.618_033_988_75) % 1;
  const kind = MIX.find((k) => (r -= k.share) < 0) ?? MIX[0];
  return {
    type: kind.type,
    data: { i, ...(i % 100 === 7 ? { fail: true } : {}) },
    ...(i % 10 === 3 ? { key: `k-${i}` } : {}),
  };
}

/**
 * Adds tasks `from`..`to` (exclusive) and waits until the node has run them. Prints progress once a second.
 * The node must be started with the seed types defined.
 */
export async function seedTo(conveyor: Conveyor, from: number, to: number, label: string): Promise<void> {
  const started = performance.now();
  let added = from;
  const timer = setInterval(async () => {
    const done = await finished(conveyor);
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(
      `  ${label}: added ${added.toLocaleString("en")}/${to.toLocaleString("en")}, finished ${done.toLocaleString("en")} (${Math.round((done - from) / seconds).toLocaleString("en")} tasks/s)\n`,
    );
  }, 2000);
  try {
    // Two producers: the node runs tasks while they add, as in production, never more than AHEAD unfinished (a
    // backlog of a million would measure the drain of a bloated queue, not the pages).
    const next = () => (added < to ? [added, (added = Math.min(to, added + BATCH))] : null);
    let done = from;
    const producer = async () => {
      for (let range = next(); range !== null; range = next()) {
        const [a, b] = range as [number, number];
        while (a - done > AHEAD) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          done = await finished(conveyor);
        }
        await conveyor.enqueueMany(Array.from({ length: b - a }, (_, k) => taskAt(a + k)));
      }
    };
    await Promise.all([producer(), producer()]);
    while ((await finished(conveyor)) < to) await new Promise((resolve) => setTimeout(resolve, 200));
  } finally {
    clearInterval(timer);
  }
}

/** A backlog of queued tasks in a paused queue, and a few scheduled for tomorrow. */
export async function addBacklog(conveyor: Conveyor, count: number): Promise<void> {
  await conveyor.pauseQueue(BACKLOG_QUEUE);
  for (let i = 0; i < count; i += BATCH) {
    const n = Math.min(BATCH, count - i);
    await conveyor.enqueueMany(Array.from({ length: n }, (_, k) => ({ type: "backlog.item", data: { k: i + k } })));
  }
  const tomorrow = new Date(Date.now() + 86_400_000);
  await conveyor.enqueueMany(
    Array.from({ length: 100 }, (_, k) => ({ type: "report.build", data: { nightly: k }, runAt: tomorrow })),
  );
}

/** Tasks that ended, by the counts table. */
async function finished(conveyor: Conveyor): Promise<number> {
  const queues = await conveyor.queues();
  return queues.reduce((sum, q) => sum + q.counts.completed + q.counts.failed, 0);
}
