/**
 * Keeps this node's row fresh, so that others (and the rescuer) can tell it is alive, and publishes what
 * the node reports about itself (its supervision tree, its queues) for /api/nodes and the dashboard.
 */
import type { Json } from "../core/task.ts";
import type { NodeRecord, Store } from "../store/store.ts";
import { sleep } from "./wakeup.ts";
import type { Service } from "./service.ts";

export class Heartbeat implements Service {
  readonly name = "heartbeat";
  readonly #store: Store;
  readonly #node: Omit<NodeRecord, "heartbeatAt" | "info">;
  readonly #intervalMs: number;
  readonly #info: () => Json;
  #lastBeatAt = 0;
  #stalledUntil = 0;

  readonly #deadAfterMs: number;

  constructor(
    store: Store,
    node: Omit<NodeRecord, "heartbeatAt" | "info">,
    timing: { intervalMs: number; deadAfterMs: number },
    info: () => Json,
  ) {
    this.#store = store;
    this.#node = node;
    this.#intervalMs = timing.intervalMs;
    this.#deadAfterMs = timing.deadAfterMs;
    this.#info = info;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.beat();
      await sleep(this.#intervalMs, signal);
    }
  }

  async beat(): Promise<void> {
    await this.#store.nodeHeartbeat({ node: { ...this.#node, info: this.#info() }, now: new Date() });
    const now = Date.now();
    // A beat that came late means the store (or this process) stalled: other nodes may have stalled too,
    // so their silence proves nothing until a full dead-time has passed with beats on time again.
    if (this.#lastBeatAt > 0 && now - this.#lastBeatAt > 2 * this.#intervalMs)
      this.#stalledUntil = now + this.#deadAfterMs;
    this.#lastBeatAt = now;
  }

  /** Whether this node can judge others now: its own beats have been on time for a dead-time. */
  get trustworthy(): boolean {
    return (
      this.#lastBeatAt > 0 && Date.now() >= this.#stalledUntil && Date.now() - this.#lastBeatAt <= 2 * this.#intervalMs
    );
  }
}
