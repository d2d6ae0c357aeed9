/**
 * One point of the table-size curve (scale/tables.ts), in a process of its own as every system of the main bench
 * is: a fresh Conveyor store, filled with `size` finished tasks (scale/fill.ts) before the clock, then the main
 * bench's enqueue, drain and latency workloads (lib/harness.ts) against it, unchanged. The result goes back to the
 * parent over IPC.
 */
import { performance } from "node:perf_hooks";
import { progressLine, reasonOf, runSystem } from "../lib/harness.ts";
import type { BenchSystem, ChildJob, SystemResult } from "../lib/types.ts";
import type { ConveyorBenchSystem } from "../systems/conveyor.ts";
import { create as createPostgres } from "../systems/conveyor-postgres.ts";
import { create as createSqlite } from "../systems/conveyor-sqlite.ts";
import { fillFinished } from "./fill.ts";

export type TablesJob = ChildJob & { size: number };
/** `fillError`: the filler failed (the harness reports any set-up error as "unavailable"; this one is a failure). */
export type TablesMessage = { type: "result"; result: SystemResult; fillSeconds: number; fillError?: string };

const job = JSON.parse(process.argv[2] ?? "{}") as TablesJob;
const inner: ConveyorBenchSystem = job.system === "conveyor-sqlite" ? createSqlite(job) : createPostgres(job);
let fillSeconds = 0;
let fillError: string | undefined;
const label = `tables ${job.system} ${job.size.toLocaleString("en")}`;

const system: BenchSystem = {
  ...inner,
  async setup() {
    await inner.setup();
    const t0 = performance.now();
    await fillFinished(inner.storeOptions(), job.size, (done) =>
      progressLine(`${label}: filled ${done.toLocaleString("en")}/${job.size.toLocaleString("en")}…`),
    ).catch((error: unknown) => {
      fillError = reasonOf(error);
      throw error;
    });
    fillSeconds = (performance.now() - t0) / 1000;
    if (job.size > 0) progressLine(`${label}: filled in ${fillSeconds.toFixed(1)} s`);
  },
  // The store's completed count includes the filler: the drain ends when the bench's own N are done.
  async completedInStore() {
    return (await inner.completedInStore!()) - job.size;
  },
};

let result: SystemResult;
try {
  result = await runSystem(system, job);
} catch (error) {
  result = { info: inner.info, status: "failed", reason: reasonOf(error), n: job.n };
}
const cpu = process.cpuUsage();
result.cpuSeconds = Math.round((cpu.user + cpu.system) / 10_000) / 100;
process.send!(
  { type: "result", result, fillSeconds, ...(fillError === undefined ? {} : { fillError }) } satisfies TablesMessage,
  () => process.exit(0),
);
