/**
 * Waiting in a service loop. A Wakeup is a doorbell: `wait()` resolves at the first of ring(), the timeout, or the
 * abort
 * signal. A ring that comes while nobody waits is remembered, so a loop never misses work that arrived
 * between its last check and its next wait.
 */
export class Wakeup {
  #pending = false;
  #resolve: (() => void) | null = null;

  ring(): void {
    if (this.#resolve !== null) {
      const resolve = this.#resolve;
      this.#resolve = null;
      resolve();
    } else {
      this.#pending = true;
    }
  }

  wait(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.#pending || signal.aborted) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#resolve = null;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      signal.addEventListener("abort", done, { once: true });
      this.#resolve = done;
    });
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects): the pause between a service's passes. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
