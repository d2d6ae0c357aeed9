/**
 * Demo task types, loaded by `npm start` (or `conveyor start --handlers examples/demo/handlers.ts`).
 * Scripts outside the project rely on these names and data shapes.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Conveyor, TaskContext } from "../../src/index.ts";

export default function register(conveyor: Conveyor): void {
  /** `{ms, steps}`: sleeps `ms` in `steps` steps, reporting progress after each, and stops when asked. */
  conveyor.define("demo.sleep", async (data: { ms?: number; steps?: number }, ctx: TaskContext) => {
    const ms = data?.ms ?? 1000;
    const steps = Math.max(1, data?.steps ?? 10);
    for (let step = 1; step <= steps; step++) {
      await sleep(ms / steps, undefined, { signal: ctx.signal });
      ctx.progress((step / steps) * 100, { step, steps });
    }
    return { slept: ms };
  });

  /** `{times}`: fails that many attempts, then succeeds. */
  conveyor.define(
    "demo.fail",
    async (data: { times?: number }, ctx: TaskContext) => {
      const times = data?.times ?? 1;
      if (ctx.attempt <= times) throw new Error(`demo failure ${ctx.attempt} of ${times}`);
      return { succeededOnAttempt: ctx.attempt };
    },
    { maxAttempts: 10, backoff: { baseMs: 500 } },
  );

  /** `{ms}`: a busy CPU loop that ignores the abort signal; it runs in a worker thread so a stop can end it. */
  conveyor.define("demo.spin", new URL("./spin.ts", import.meta.url), { isolation: "thread", graceMs: 1000 });
}
