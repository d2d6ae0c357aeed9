/**
 * The load the servers publish, the same for every system: events at a fixed rate, round-robin over the
 * application channels, each carrying who published it (`n`, the node's index), its sequence number on that
 * channel from that node (`s`, from 1), and the time just before the publish call (`t`, epoch ms). A client checks
 * `s` for loss and duplicates and takes `t` for the latency; the publish time includes whatever the publish call
 * costs (for Conveyor, its transaction's commit).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { epochMs, type Histogram, histogram, record } from "./stats.ts";

export type Message = { n: number; s: number; t: number };

export type PublishPlan = { node: number; rate: number; seconds: number; channels: string[] };

export type PublishOutcome = {
  /** Per channel (index into the plan's channels): events published successfully. */
  published: number[];
  sent: number;
  failed: number;
  firstError: string | null;
  seconds: number;
  /** The most events that were due but not yet sent when a tick came (the publisher's own lag). */
  behindMax: number;
  /** How long each publish call took (to its commit, for Conveyor). */
  callMs: Histogram;
};

/** How often the pacer wakes: at 500 events/s, about one event per tick. */
const TICK_MS = 2;

/**
 * Calls `emit(i)` for i = 0, 1, 2… at `rate` per second until `seconds` have passed or `signal` aborts, catching up
 * on events that fell due while the process was busy (so the rate holds on average). Returns how many were emitted
 * and the largest backlog seen at a tick.
 */
export async function paced(
  rate: number,
  until: { seconds?: number; signal?: AbortSignal },
  emit: (i: number) => void,
): Promise<{ sent: number; seconds: number; behindMax: number }> {
  const total = until.seconds === undefined ? Number.POSITIVE_INFINITY : Math.round(rate * until.seconds);
  const started = epochMs();
  let sent = 0;
  let behindMax = 0;
  while (sent < total && !until.signal?.aborted) {
    const due = Math.min(total, Math.floor(((epochMs() - started) * rate) / 1000));
    behindMax = Math.max(behindMax, due - sent - 1);
    while (sent < due) emit(sent++);
    await sleep(TICK_MS);
  }
  return { sent, seconds: (epochMs() - started) / 1000, behindMax: Math.max(0, behindMax) };
}

/**
 * Publishes the plan's events through `publish` (a promise for durable publishing, or nothing for a fire-and-forget
 * emit), not waiting for one to finish before the next is due; resolves once every publish has settled.
 */
export async function publishLoad(
  plan: PublishPlan,
  publish: (channel: string, message: Message) => Promise<void> | void,
): Promise<PublishOutcome> {
  const published = plan.channels.map(() => 0);
  const seq = plan.channels.map(() => 0);
  const callMs = histogram();
  const pending = new Set<Promise<void>>();
  let failed = 0;
  let firstError: string | null = null;
  const timing = await paced(plan.rate, { seconds: plan.seconds }, (i) => {
    const index = i % plan.channels.length;
    const t = epochMs();
    const message: Message = { n: plan.node, s: ++seq[index]!, t };
    const done = () => {
      published[index]!++;
      record(callMs, epochMs() - t);
    };
    const result = publish(plan.channels[index]!, message);
    if (result === undefined) return done();
    const settled = result.then(done, (error: unknown) => {
      failed++;
      firstError ??= error instanceof Error ? error.message : String(error);
    });
    pending.add(settled);
    void settled.finally(() => pending.delete(settled));
  });
  await Promise.all(pending);
  return {
    published,
    sent: timing.sent,
    failed,
    firstError,
    seconds: timing.seconds,
    behindMax: timing.behindMax,
    callMs,
  };
}

/**
 * The catch-up's backlog: `count` events to one channel, as fast as the system takes them with up to `concurrency`
 * publishes in flight, numbered from `firstSeq`.
 */
export async function publishBurst(
  count: number,
  concurrency: number,
  firstSeq: number,
  node: number,
  publish: (message: Message) => Promise<void> | void,
): Promise<{ published: number; seconds: number }> {
  const started = epochMs();
  let next = 0;
  let published = 0;
  const worker = async () => {
    while (next < count) {
      const s = firstSeq + next++;
      await publish({ n: node, s, t: epochMs() });
      published++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { published, seconds: (epochMs() - started) / 1000 };
}
