/**
 * The task type of the soak, for `conveyor start --handlers`: a handler that reports progress twice and waits a
 * little between (40 ms in all), so that tasks overlap, progress is written and streamed, and timers come and go.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Conveyor } from "../../src/index.ts";

export const SOAK_TASK_TYPE = "bench.soak";

/**
 * `BENCH_SOAK_LEAK=1` makes every task leave an interval timer behind: a leak on purpose, to see the soak's check
 * catch one (active resources climb by the task rate).
 */
const leak = process.env.BENCH_SOAK_LEAK === "1";
const leaked: NodeJS.Timeout[] = [];

export default function register(conveyor: Conveyor): void {
  conveyor.define(SOAK_TASK_TYPE, async (_data, ctx) => {
    ctx.progress(25, { step: "first half" });
    await sleep(20, undefined, { signal: ctx.signal });
    ctx.progress(75, { step: "second half" });
    await sleep(20, undefined, { signal: ctx.signal });
    if (leak) leaked.push(setInterval(() => {}, 3_600_000));
    return { ok: true };
  });
}
