/**
 * One worker process of the node-count curve (scale/nodes.ts): a system attached to the store the parent made
 * (`attach`: same schema or key prefix, nothing dropped), with connections of its own. It sets up, says ready, and
 * on "go" starts its workers (a runtime) or runs the claim loop (a raw store); it reports how many tasks it has
 * started as they go, and on "stop" the ids it ran, then tears down and exits.
 *
 * The system's module is imported by a computed path, as bench/child.ts does: a peer that is not installed makes
 * that system unavailable, not the scale run.
 */
import { reasonOf } from "../lib/harness.ts";
import type { BenchSystem, ChildJob } from "../lib/types.ts";

export type WorkerCommand = { type: "go" } | { type: "stop" };
export type WorkerMessage =
  | { type: "ready" }
  | { type: "unavailable"; reason: string }
  /** Handler calls so far (a runtime), or rows completed (the raw loop): says when to start asking the store. */
  | { type: "progress"; started: number }
  /** The raw loop has claimed and completed everything it could find. */
  | { type: "loop-done"; completed: number }
  | { type: "failed"; reason: string }
  | { type: "result"; ids: (string | number)[]; calls: number; cpuSeconds: number };

/** How often a worker says how far it is: the parent starts polling the store once the starts add up to N. */
const PROGRESS_EVERY_MS = 20;

const job = { ...(JSON.parse(process.argv[2] ?? "{}") as ChildJob), attach: true };
const send = (message: WorkerMessage) => process.send!(message);

const ids: (string | number)[] = [];
let calls = 0;
let system: BenchSystem;
try {
  const url = new URL(`../systems/${job.system}.ts`, import.meta.url);
  const module = (await import(url.href)) as { create: (job: ChildJob) => BenchSystem };
  system = module.create(job);
  await system.setup();
} catch (error) {
  send({ type: "unavailable", reason: reasonOf(error) });
  process.exit(0);
}

let reported = -1;
const progress = setInterval(() => {
  if (calls === reported) return;
  reported = calls;
  send({ type: "progress", started: calls });
}, PROGRESS_EVERY_MS);

process.on("message", async (command: WorkerCommand) => {
  if (command.type === "go") {
    try {
      if (system.drainLoop !== undefined) {
        const completed = await system.drainLoop((done) => (calls = done));
        send({ type: "loop-done", completed });
      } else {
        await system.startWorkers!((id) => {
          calls++;
          ids.push(id);
        });
      }
    } catch (error) {
      send({ type: "failed", reason: reasonOf(error) });
    }
    return;
  }
  clearInterval(progress);
  await system.teardown();
  const cpu = process.cpuUsage();
  const cpuSeconds = Math.round((cpu.user + cpu.system) / 10_000) / 100;
  process.send!({ type: "result", ids, calls, cpuSeconds } satisfies WorkerMessage, () => process.exit(0));
});
send({ type: "ready" });
