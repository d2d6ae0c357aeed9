/**
 * Conveyor driven through its public API only, whatever the store: enqueueMany in batches, one no-op type
 * defined before start(), completions counted by the store (queues()). The producer of drain-producer is a
 * second node on the same data, never started, with a store and bus of its own.
 */
import { Conveyor, type ConveyorOptions } from "../../src/index.ts";
import type { BenchSystem, ChildJob, SystemInfo, TaskStarted } from "../lib/types.ts";

const TYPE = "bench.noop";
/** The queue a type defined without one goes to: the queue drain-resume pauses. */
const QUEUE = "default";

export type ProducerSetup = {
  /** Options for a second node on the same data: its own store and bus objects. */
  options: ConveyorOptions;
  /** Closes what the producer's setup opened (the node does not close a store or bus handed to it). */
  close: () => Promise<void>;
};

export type ConveyorSetup = {
  /** Options for the node (store, bus, database, …); `concurrency` is added here. */
  options: ConveyorOptions;
  /** Opens what a producer node needs, on the same database (and bus channel) as the node. */
  producer: () => Promise<ProducerSetup>;
  /** Closes what the setup opened (a store passed in is not closed by the node) and removes the data. */
  cleanup: () => Promise<void>;
};

function batch(count: number) {
  return Array.from({ length: count }, () => ({ type: TYPE, data: null }));
}

/** A Conveyor system; `storeOptions` says where its store is once set up (the scale bench fills it by SQL). */
export type ConveyorBenchSystem = BenchSystem & { storeOptions(): ConveyorOptions };

export function conveyorSystem(
  info: SystemInfo,
  job: ChildJob,
  prepare: () => Promise<ConveyorSetup>,
): ConveyorBenchSystem {
  let conveyor: Conveyor | null = null;
  let setup: ConveyorSetup | null = null;
  let producer: Conveyor | null = null;
  let producerSetup: ProducerSetup | null = null;
  let started: TaskStarted = () => {};
  return {
    info,
    async setup() {
      setup = await prepare();
      conveyor = new Conveyor({ ...setup.options, concurrency: job.concurrency });
      conveyor.define(TYPE, (data: { t?: number } | null, ctx) => started(ctx.id, data?.t));
      await conveyor.queues(); // migrate now, outside the timed workloads
    },
    storeOptions() {
      return setup!.options;
    },
    async enqueueBatch(count) {
      await conveyor!.enqueueMany(batch(count));
    },
    async startWorkers(onStarted) {
      started = onStarted;
      await conveyor!.start();
    },
    async startProducer() {
      producerSetup = await setup!.producer();
      producer = new Conveyor(producerSetup.options);
      await producer.queues(); // open its store outside the clock
    },
    async enqueueBatchFromProducer(count) {
      await producer!.enqueueMany(batch(count));
    },
    async enqueueBatchFromWorker(count) {
      // The started node itself, as its HTTP API adds tasks.
      await conveyor!.enqueueMany(batch(count));
    },
    async pauseQueue() {
      await conveyor!.pauseQueue(QUEUE);
    },
    async resumeQueue() {
      await conveyor!.resumeQueue(QUEUE);
    },
    async completedInStore() {
      const queues = await conveyor!.queues();
      return queues.reduce((sum, q) => sum + q.counts.completed, 0);
    },
    async drainedInStore() {
      const queues = await conveyor!.queues();
      return queues.every((q) => q.counts.queued === 0 && q.counts.running === 0);
    },
    async addOne(t0) {
      await conveyor!.enqueue(TYPE, { t: t0 });
    },
    async teardown() {
      for (const node of [producer, conveyor]) {
        try {
          await node?.stop();
        } catch (error) {
          process.stderr.write(`  ${info.name}: stop failed: ${String(error)}\n`);
        }
      }
      await producerSetup
        ?.close()
        .catch((error: unknown) =>
          process.stderr.write(`  ${info.name}: closing the producer failed: ${String(error)}\n`),
        );
      await setup
        ?.cleanup()
        .catch((error: unknown) => process.stderr.write(`  ${info.name}: cleanup failed: ${String(error)}\n`));
    },
  };
}
