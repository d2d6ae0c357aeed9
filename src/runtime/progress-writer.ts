/**
 * Progress is coalesced per task: handlers may report as often as they like, the store sees at most one
 * write per task every `intervalMs`, always carrying the latest value.
 */
import type { Task, TaskProgress } from "../core/task.ts";
import type { Store } from "../store/store.ts";
import type { Log } from "./handler.ts";

type Slot = {
  attempt: number;
  latest: TaskProgress | null;
  lastWriteAt: number;
  timer: NodeJS.Timeout | null;
  /** The timed write under way, which carries an older report than any made since. */
  writing: Promise<void> | null;
};

export class ProgressWriter {
  readonly #store: Store;
  readonly #logger: Log;
  readonly #intervalMs: number;
  readonly #onWritten: () => void;
  readonly #slots = new Map<number, Slot>();

  constructor(store: Store, logger: Log, intervalMs: number, onWritten: () => void) {
    this.#store = store;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
    this.#onWritten = onWritten;
  }

  report(task: Task, progress: TaskProgress): void {
    let slot = this.#slots.get(task.id);
    if (slot === undefined) {
      slot = { attempt: task.attempt, latest: null, lastWriteAt: 0, timer: null, writing: null };
      this.#slots.set(task.id, slot);
    }
    slot.latest = progress;
    this.#schedule(task.id, slot);
  }

  /** Write a finished task's last unwritten report now (so the stored progress is its latest), then forget it. */
  async flush(taskId: number): Promise<void> {
    const slot = this.#slots.get(taskId);
    if (slot === undefined) return;
    this.forget(taskId);
    // After the timed write under way, if any: on another connection, the older report could land last.
    await slot.writing;
    await this.#send(taskId, slot);
  }

  /** Drop pending progress of a task that finished: its final state says more. */
  forget(taskId: number): void {
    const slot = this.#slots.get(taskId);
    if (slot?.timer != null) clearTimeout(slot.timer);
    this.#slots.delete(taskId);
  }

  /** Arm the slot's timer for the earliest moment the next write is allowed, unless armed or nothing is pending. */
  #schedule(taskId: number, slot: Slot): void {
    if (slot.timer !== null || slot.latest === null) return;
    const wait = Math.max(0, slot.lastWriteAt + this.#intervalMs - Date.now());
    slot.timer = setTimeout(() => void this.#write(taskId, slot), wait);
  }

  async #write(taskId: number, slot: Slot): Promise<void> {
    slot.writing = this.#send(taskId, slot);
    await slot.writing;
    slot.writing = null;
    slot.timer = null;
    // A report that came in during the write goes out one interval later (if the task still runs).
    if (this.#slots.get(taskId) === slot) this.#schedule(taskId, slot);
  }

  async #send(taskId: number, slot: Slot): Promise<void> {
    const progress = slot.latest;
    if (progress === null) return;
    slot.latest = null;
    slot.lastWriteAt = Date.now();
    try {
      await this.#store.taskProgress({ id: taskId, attempt: slot.attempt, progress, now: new Date() });
      this.#onWritten();
    } catch (error) {
      // Progress is advisory: a lost update is replaced by the next one.
      this.#logger.warn("progress write failed", { err: error, taskId });
    }
  }
}
