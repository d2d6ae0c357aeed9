/**
 * Watches the cluster's membership as the store shows it, once per heartbeat interval, and reports changes as node
 * events: a node joined (its row appeared, or it beats again after a silence), or left (its row is gone: it
 * stopped; or it has been silent for the dead time). The first look only learns who is there.
 */
import type { NodeRecord, Store } from "../store/store.ts";
import type { NodeEvents } from "./node-events.ts";
import type { Service } from "./service.ts";
import { sleep } from "./wakeup.ts";

export class MembershipWatcher implements Service {
  readonly name = "membership";
  readonly #store: Store;
  readonly #events: NodeEvents;
  readonly #intervalMs: number;
  readonly #deadAfterMs: number;
  /** The live nodes of the last look; null before the first. */
  #alive: Map<string, NodeRecord> | null = null;

  constructor(store: Store, events: NodeEvents, timing: { intervalMs: number; deadAfterMs: number }) {
    this.#store = store;
    this.#events = events;
    this.#intervalMs = timing.intervalMs;
    this.#deadAfterMs = timing.deadAfterMs;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.look();
      await sleep(this.#intervalMs, signal);
    }
  }

  async look(now = Date.now()): Promise<void> {
    const rows = await this.#store.nodeList();
    const alive = new Map(rows.filter((n) => now - n.heartbeatAt.getTime() < this.#deadAfterMs).map((n) => [n.id, n]));
    const before = this.#alive;
    this.#alive = alive;
    if (before === null) return;
    const present = new Set(rows.map((n) => n.id));
    for (const [id, node] of before) {
      if (!alive.has(id)) this.#events.emit("node:left", { node, reason: present.has(id) ? "silent" : "stopped" });
    }
    for (const [id, node] of alive) {
      if (!before.has(id)) this.#events.emit("node:joined", { node });
    }
  }
}
