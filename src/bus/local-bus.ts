/**
 * The in-process bus, for a single node (SQLite). Deliveries are asynchronous (a microtask later), so a
 * publisher never runs a subscriber's code inside its own call stack.
 */
import type { Bus, BusChannel, BusMessages } from "./bus.ts";

export class LocalBus implements Bus {
  readonly #listeners = new Map<BusChannel, Set<(message: never) => void>>();

  async start(): Promise<void> {}

  publish<C extends BusChannel>(channel: C, message: BusMessages[C]): void {
    const listeners = this.#listeners.get(channel);
    if (listeners === undefined || listeners.size === 0) return;
    queueMicrotask(() => {
      for (const listener of listeners) (listener as (message: BusMessages[C]) => void)(message);
    });
  }

  subscribe<C extends BusChannel>(channel: C, listener: (message: BusMessages[C]) => void): () => void {
    let listeners = this.#listeners.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(channel, listeners);
    }
    listeners.add(listener as (message: never) => void);
    return () => listeners.delete(listener as (message: never) => void);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
