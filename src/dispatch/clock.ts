/**
 * Dispatch's time: when an attempt happens, when the next one is due, and how long the retry timer sleeps. A test
 * injects a ManualClock and moves it forward by hours in an instant, so that a retry schedule measured in hours is
 * checked without waiting for it; everything else in Conveyor keeps the real clock (a task made due by the retry
 * timer runs at once).
 */

export interface Clock {
  now(): Date;
  /** Resolves once the clock reads `at` or later, or when `signal` aborts (never rejects). */
  sleepUntil(at: Date, signal: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleepUntil(at, signal) {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, at.getTime() - Date.now()));
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  },
};

/** A clock that moves only when told to: `advance(ms)` or `set(date)`. */
export class ManualClock implements Clock {
  #now: number;
  readonly #sleepers = new Set<{ at: number; wake: () => void }>();

  constructor(start: Date = new Date()) {
    this.#now = start.getTime();
  }

  now(): Date {
    return new Date(this.#now);
  }

  advance(ms: number): void {
    this.set(new Date(this.#now + ms));
  }

  set(at: Date): void {
    this.#now = Math.max(this.#now, at.getTime());
    for (const sleeper of [...this.#sleepers]) if (sleeper.at <= this.#now) sleeper.wake();
  }

  sleepUntil(at: Date, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted || at.getTime() <= this.#now) return resolve();
      const sleeper = { at: at.getTime(), wake: () => done() };
      const done = () => {
        this.#sleepers.delete(sleeper);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.#sleepers.add(sleeper);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
