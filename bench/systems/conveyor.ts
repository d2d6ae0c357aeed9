/**
 * Conveyor driven through its public API only, whatever the store: enqueueMany in batches, one no-op type
 * defined before start(), completions counted by the store (queues()).
 */
import { Conveyor, type ConveyorOptions } from "../../src/index.ts";
import type { BenchSystem, ChildJob, SystemInfo, TaskStarted } from "../lib/types.ts";

const TYPE = "bench.noop";

export type ConveyorSetup = {
  /** Options for the node (store, bus, database, …); `concurrency` is added here. */
  options: ConveyorOptions;
  /** Closes what the setup opened (a store passed in is not closed by the node) and removes the data. */
  cleanup: () => Promise<void>;
};

export function conveyorSystem(info: SystemInfo, job: ChildJob, prepare: () => Promise<ConveyorSetup>): BenchSystem {
  let conveyor: Conveyor | null = null;
  let setup: ConveyorSetup | null = null;
  let started: TaskStarted = () => {};
  return {
    info,
    async setup() {
      setup = await prepare();
      conveyor = new Conveyor({ ...setup.options, concurrency: job.concurrency });
      conveyor.define(TYPE, (data: { t?: number } | null, ctx) => started(ctx.id, data?.t));
      await conveyor.queues(); // migrate now, outside the timed workloads
    },
    async enqueueBatch(count) {
      await conveyor!.enqueueMany(Array.from({ length: count }, () => ({ type: TYPE, data: null })));
    },
    async startWorkers(onStarted) {
      started = onStarted;
      await conveyor!.start();
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
      try {
        await conveyor?.stop();
      } catch (error) {
        process.stderr.write(`  ${info.name}: stop failed: ${String(error)}\n`);
      }
      await setup?.cleanup().catch((error: unknown) => process.stderr.write(`  ${info.name}: cleanup failed: ${String(error)}\n`));
    },
  };
}
