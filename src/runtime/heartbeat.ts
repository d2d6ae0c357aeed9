/**
 * Keeps this node's row fresh, so that others (and the rescuer) can tell it is alive, and publishes what
 * the node reports about itself (its supervision tree, its queues) for /api/nodes and the dashboard.
 */
import type { Json } from "../core/task.ts";
import type { NodeRecord, Store } from "../store/store.ts";
import { sleep } from "./pruner.ts";
import type { Service } from "./service.ts";

export class Heartbeat implements Service {
  readonly name = "heartbeat";
  readonly #store: Store;
  readonly #node: Omit<NodeRecord, "heartbeatAt" | "info">;
  readonly #intervalMs: number;
  readonly #info: () => Json;

  constructor(store: Store, node: Omit<NodeRecord, "heartbeatAt" | "info">, intervalMs: number, info: () => Json) {
    this.#store = store;
    this.#node = node;
    this.#intervalMs = intervalMs;
    this.#info = info;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.beat();
      await sleep(this.#intervalMs, signal);
    }
  }

  beat(): Promise<void> {
    return this.#store.nodeHeartbeat({ node: { ...this.#node, info: this.#info() }, now: new Date() });
  }
}
