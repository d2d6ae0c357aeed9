/**
 * Task types of the failover bench's nodes (`conveyor start --handlers bench/failover/handlers.ts`). Each prints one
 * plain line on stdout (pino's JSON lines share it; the first word tells them apart):
 *
 *   START <id> <attempt> <node> <epochMs>      bench.hold started; it waits on its signal (or data.ms)
 *   BUSY <id> <attempt> <node> <epochMs>       bench.busy started: it blocks the event loop for data.ms
 *   BUSY-END <id> <attempt> <node> <epochMs>   ... and returned
 *
 * bench.busy is defined only on a node started with BENCH_BUSY=1, so that no other node runs it. It has one attempt:
 * a node judged dead under it (a false rescue) fails it rather than running it again and again.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Conveyor, TaskContext } from "../../src/index.ts";

const say = (line: string) => process.stdout.write(`${line}\n`);

export default function register(conveyor: Conveyor): void {
  const node = conveyor.nodeName;
  conveyor.define(
    "bench.hold",
    async (data: { ms?: number } | null, ctx: TaskContext) => {
      say(`START ${ctx.id} ${ctx.attempt} ${node} ${Date.now()}`);
      await sleep(data?.ms ?? 60_000, undefined, { signal: ctx.signal }).catch(() => {});
      return { node };
    },
    { queue: "hold", maxAttempts: 20 },
  );
  if (process.env.BENCH_BUSY === "1") {
    conveyor.define(
      "bench.busy",
      (data: { ms: number }, ctx: TaskContext) => {
        say(`BUSY ${ctx.id} ${ctx.attempt} ${node} ${Date.now()}`);
        const until = Date.now() + data.ms;
        while (Date.now() < until) {
          // CPU work on the event loop, as an inline handler that parses, hashes or renders would do
        }
        say(`BUSY-END ${ctx.id} ${ctx.attempt} ${node} ${Date.now()}`);
        return { node };
      },
      { queue: "busy", maxAttempts: 1 },
    );
  }
}
