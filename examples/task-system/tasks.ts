/**
 * The task itself: sleep for a while, then log. It is the seed's `TaskWorker` (C.1) as a Conveyor handler,
 * with the seed's log lines, except that a stop really stops it: the sleep listens to `ctx.signal`.
 */
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { inspect } from "node:util";
import type { Conveyor, Json, TaskContext } from "../../src/index.ts";

/** The queue and the task type of the example. */
export const QUEUE = "task-system";
export const TASK_TYPE = "task-system.task";

/** Where the seed's log lines go; console.log by default. */
export type LogLine = (line: string) => void;

/** What the handler tells listeners (the tests), besides the log lines. */
export type TaskSystemEvents = {
  started: [id: number, worker: number];
  completed: [id: number, worker: number];
  /** `reason` is "cancelled" for a DELETE, "shutdown" when the node stops with the task running. */
  stopped: [id: number, worker: number, reason: string];
};

export type TaskSystemOptions = {
  /** Worker slots: the numbers the log lines show, 1..poolSize. */
  poolSize: number;
  minSeconds: number;
  maxSeconds: number;
  log?: LogLine;
  /** Processing time of one task in ms; by default uniform in [minSeconds, maxSeconds]. Tests override it. */
  durationMs?: (id: number, data: Json) => number;
  /** The emitter for the handler's events; give one to listen from before the node starts. */
  events?: EventEmitter<TaskSystemEvents>;
};

/**
 * Worker numbers for the log lines. Conveyor caps the tasks running at once at the pool size, and a
 * handler gives its number back before Conveyor frees its slot, so a free number always exists; should
 * one not (it cannot happen with this handler), the next number past the pool is used rather than failing.
 */
export class WorkerSlots {
  readonly #busy = new Set<number>();
  readonly size: number;

  constructor(size: number) {
    this.size = size;
  }

  acquire(): number {
    let n = 1;
    while (this.#busy.has(n)) n++;
    this.#busy.add(n);
    return n;
  }

  release(n: number): void {
    this.#busy.delete(n);
  }

  get busy(): number[] {
    return [...this.#busy].sort((a, b) => a - b);
  }
}

/** The reference shown in the "stopped" line: the task id and the attempt, in the seed's `#Reference<…>` dress. */
export function referenceOf(ctx: Pick<TaskContext, "id" | "attempt">): string {
  return `#Reference<0.${ctx.id}.${ctx.attempt}>`;
}

export type TaskSystem = {
  readonly events: EventEmitter<TaskSystemEvents>;
  readonly slots: WorkerSlots;
};

/** Declare the example's task type on `conveyor` (before `conveyor.start()`). */
export function defineTaskSystem(conveyor: Conveyor, options: TaskSystemOptions): TaskSystem {
  const log = options.log ?? ((line: string) => console.log(line));
  const events = options.events ?? new EventEmitter<TaskSystemEvents>();
  const slots = new WorkerSlots(options.poolSize);
  const durationMs =
    options.durationMs ??
    (() => {
      const { minSeconds: min, maxSeconds: max } = options;
      return Math.round((min + Math.random() * (max - min)) * 1000);
    });

  conveyor.define<Json>(
    TASK_TYPE,
    async (data, ctx) => {
      const worker = slots.acquire();
      try {
        log(`Task ${ctx.id} is being processed by the worker ${worker}`);
        events.emit("started", ctx.id, worker);
        const ms = durationMs(ctx.id, data);
        try {
          await sleep(ms, undefined, { signal: ctx.signal });
        } catch (error) {
          if (!ctx.signal.aborted) throw error;
          const reason = String(ctx.signal.reason);
          if (reason === "cancelled") {
            log(`Task ${ctx.id} has just been stopped with the reference ${referenceOf(ctx)}`);
          } else {
            // Not a seed line: on shutdown Conveyor puts the task back in the queue, and the next start runs it.
            log(`Task ${ctx.id} was interrupted (${reason}) and goes back to the queue`);
          }
          events.emit("stopped", ctx.id, worker, reason);
          return null; // Conveyor discards what a stopped handler returns
        }
        log(
          `Task ${ctx.id} has just been completed with the following content: ${inspect(data, { depth: null, breakLength: Infinity })}`,
        );
        events.emit("completed", ctx.id, worker);
        return { worker, ms };
      } finally {
        slots.release(worker);
      }
    },
    {
      queue: QUEUE,
      // Conveyor's default of 3 attempts is kept: this handler only fails on a bug, but an attempt is also
      // used up when the node stops (or dies) under a running task, which then runs again from the queue.
      graceMs: 1000,
    },
  );

  return { events, slots };
}
