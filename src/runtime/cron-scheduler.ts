/**
 * Fires cron schedules: on the leader, for every enabled schedule, the latest tick that is due and has not
 * fired yet enqueues one task. `store.scheduleFire` moves the schedule's lastTick and inserts the task in
 * one transaction, so a tick fires once cluster-wide even if two nodes briefly both think they lead.
 * Ticks missed while no leader ran are not replayed one by one: only the latest fires (no storm after an
 * outage), which is what Oban and River's periodic jobs do as well.
 */
import { Cron } from "croner";
import type { Notifier } from "./notifier.ts";
import { normalizeTaskInput, type TaskDefaults } from "../core/task-input.ts";
import type { Schedule, Store } from "../store/store.ts";
import type { Log } from "./handler.ts";
import type { Service } from "./service.ts";
import { Wakeup } from "./wakeup.ts";

export type CronSchedulerOptions = { pollIntervalMs: number; defaults: (type: string) => TaskDefaults };

export class CronScheduler implements Service {
  readonly name = "cron";
  readonly #store: Store;
  readonly #notifier: Notifier;
  readonly #options: CronSchedulerOptions;
  readonly #logger: Log;
  readonly #wakeup = new Wakeup();

  constructor(store: Store, notifier: Notifier, options: CronSchedulerOptions, logger: Log) {
    this.#store = store;
    this.#notifier = notifier;
    this.#options = options;
    this.#logger = logger;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const next = await this.fireDue(new Date());
      // Schedules change rarely; the poll picks up new ones, the timer hits each tick on time.
      await this.#wakeup.wait(Math.min(this.#options.pollIntervalMs, next - Date.now()), signal);
    }
  }

  /** Fires every due tick; returns when the next tick of any schedule comes (epoch ms). */
  async fireDue(now: Date): Promise<number> {
    let next = Infinity;
    for (const schedule of await this.#store.scheduleList()) {
      if (!schedule.enabled) continue;
      const cron = cronOf(schedule);
      const due = cron.previousRuns(1, new Date(now.getTime() + 1))[0]; // the latest tick at or before now
      if (due !== undefined && isUnfired(schedule, due)) await this.#fire(schedule, due, now);
      next = Math.min(next, cron.nextRun(now)?.getTime() ?? Infinity);
    }
    return next;
  }

  async #fire(schedule: Schedule, tick: Date, now: Date): Promise<void> {
    const input = normalizeTaskInput(
      { type: schedule.type, data: schedule.data, ...schedule.options },
      this.#options.defaults,
      now,
    );
    const outcome = await this.#store.scheduleFire({ name: schedule.name, tick, task: input, now });
    if (outcome === null) return; // another node fired this tick
    this.#logger.info(`schedule ${schedule.name} fired for ${tick.toISOString()}: task ${outcome.task.id}`);
    this.#notifier.tasksWritten([outcome.task]);
  }
}

/** A tick fires if it is after the last one fired; a new schedule starts with the first tick after its creation. */
function isUnfired(schedule: Schedule, tick: Date): boolean {
  return schedule.lastTick === null
    ? tick.getTime() >= schedule.createdAt.getTime()
    : tick.getTime() > schedule.lastTick.getTime();
}

/** A paused croner instance: a pattern evaluator only, it schedules nothing itself. */
export function cronOf(schedule: { cron: string; timezone: string | null }): Cron {
  return new Cron(schedule.cron, {
    paused: true,
    ...(schedule.timezone === null ? {} : { timezone: schedule.timezone }),
  });
}
