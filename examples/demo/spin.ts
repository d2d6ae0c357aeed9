/**
 * The `demo.spin` handler: keeps a CPU busy for `ms` and ignores its abort signal on purpose, to show that a
 * thread-isolated task is really stopped (its thread is terminated after the grace period).
 */
import type { TaskContext } from "../../src/index.ts";

export default function spin(data: { ms?: number }, ctx: TaskContext): { spun: number } {
  const ms = data?.ms ?? 1000;
  const start = Date.now();
  let lastReport = 0;
  while (Date.now() - start < ms) {
    const percent = Math.floor(((Date.now() - start) / ms) * 100);
    if (percent >= lastReport + 10) {
      lastReport = percent;
      ctx.progress(percent);
    }
  }
  return { spun: ms };
}
