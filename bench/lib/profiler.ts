/**
 * CPU profiles of single workloads (not of setup and teardown), taken in-process through the inspector
 * and written as .cpuprofile files (open them in Chrome DevTools, or summarise with `node bench/profile.ts`).
 * Only the main thread is sampled: where Conveyor's inline handlers, runtime and store driver all run.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Session } from "node:inspector/promises";

export type Profiling = { stop: () => Promise<string> };

export async function startProfiling(dir: string, name: string): Promise<Profiling> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  return {
    async stop() {
      const { profile } = await session.post("Profiler.stop");
      session.disconnect();
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${name}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      return file;
    },
  };
}
