/**
 * One system's run, in a process of its own (started by run.ts): a fresh heap, nothing left over from the
 * system before, and a hung or crashed system cannot take the whole run down. Progress goes to stderr;
 * the result goes back to the parent over the IPC channel.
 *
 * The system's module is imported by a computed path, so that type-checking the bench's top level (part
 * of the product's `npm test`) does not need the peers installed in bench/node_modules.
 */
import { reasonOf, runSystem } from "./lib/harness.ts";
import { systemEntry } from "./lib/systems.ts";
import type { BenchSystem, ChildJob, ChildMessage, SystemResult } from "./lib/types.ts";

const job = JSON.parse(process.argv[2] ?? "{}") as ChildJob;

async function load(): Promise<BenchSystem> {
  const url = new URL(`./systems/${job.system}.ts`, import.meta.url);
  const module = (await import(url.href)) as { create: (job: ChildJob) => BenchSystem };
  return module.create(job);
}

let result: SystemResult;
try {
  const system = await load();
  result = await runSystem(system, job);
} catch (error) {
  const entry = systemEntry(job.system) ?? { name: job.system, kind: "peer", store: "postgres" };
  result = { info: { ...entry, settings: "" }, status: "unavailable", reason: reasonOf(error), n: job.n };
}
const cpu = process.cpuUsage();
result.cpuSeconds = Math.round((cpu.user + cpu.system) / 10_000) / 100;
const message: ChildMessage = { type: "result", result };
process.send!(message, () => process.exit(0));
