/**
 * Per-publisher concurrency on this node: a publisher with `concurrency` n has at most n attempts in flight here.
 * A delivery task that finds no slot free waits a little (the next slot usually frees within a request's time);
 * if none frees, its delivery is put back a moment later without spending an attempt (deliver.ts), so that a slow
 * publisher's backlog never holds every worker of the queue while other publishers' deliveries wait behind it.
 */

export class PublisherSlots {
  readonly #inUse = new Map<number, number>();
  readonly #waiters = new Map<number, (() => void)[]>();

  /**
   * A slot of publisher `id` (at most `limit` at once; null: no limit), taken within `waitMs`: its release function,
   * or null when none came free in time or `signal` aborted.
   */
  async take(id: number, limit: number | null, waitMs: number, signal: AbortSignal): Promise<(() => void) | null> {
    if (limit === null) return () => {};
    const deadline = Date.now() + waitMs;
    while ((this.#inUse.get(id) ?? 0) >= limit) {
      const left = deadline - Date.now();
      if (left <= 0 || signal.aborted) return null;
      await this.#freed(id, left, signal);
    }
    this.#inUse.set(id, (this.#inUse.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const count = (this.#inUse.get(id) ?? 1) - 1;
      if (count === 0) this.#inUse.delete(id);
      else this.#inUse.set(id, count);
      this.#waiters.get(id)?.shift()?.();
    };
  }

  /** Attempts of publisher `id` in flight on this node. */
  inFlight(id: number): number {
    return this.#inUse.get(id) ?? 0;
  }

  #freed(id: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const queue = this.#waiters.get(id) ?? [];
      this.#waiters.set(id, queue);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        const at = queue.indexOf(done);
        if (at >= 0) queue.splice(at, 1);
        if (queue.length === 0 && this.#waiters.get(id) === queue) this.#waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener("abort", done, { once: true });
      queue.push(done);
    });
  }
}
