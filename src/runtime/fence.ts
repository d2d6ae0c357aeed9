/**
 * Self-fencing (docs/cluster.md). The leader judges a node dead once the node's heartbeat in the store is older than
 * the dead time, and hands its running tasks to other nodes. A node cut off from the store (a partition, a store it
 * alone cannot reach) goes on running them meanwhile, and then two nodes would run one task side by side for as
 * long as the cut lasts. So the node judges itself first: once the last heartbeat it knows reached the store is
 * older than the dead time minus a margin, it fences — stops claiming, fires the signal of every attempt it runs
 * (reason "fenced") and ends them within the margin (a thread is terminated), so that they are over by the time
 * the leader may hand them on. It rejoins by itself: when a heartbeat lands again, it hands back the tasks it
 * abandoned that are still its own in the store (the others were rescued meanwhile) and claims again.
 *
 * The age counts from when the heartbeat's write began, the time it wrote into its row, which is what the leader
 * compares; a write that lands late proves only that older instant.
 */
import type { NodeEvents } from "./node-events.ts";

/** What fencing stops and restarts: the node's queue workers (WorkerPool). */
export type FenceTarget = {
  /** Stop claiming; stop every running attempt, each ended within `graceMs`. Returns the ids stopped. */
  fence(graceMs: number): number[];
  /** Hand back what was abandoned; returns the ids that were still this node's. Throws if the store refused. */
  releaseAbandoned(now: Date): Promise<number[]>;
  /** Claim again. */
  unfence(): void;
};

export type FenceOptions = {
  node: string;
  /** A node whose heartbeat is older than this is dead to the leader. */
  deadAfterMs: number;
  /** How long before the dead time the node fences: the time its stopped attempts get to end. */
  marginMs: number;
  /** Called with the ids handed back when the node rejoins (to ring the other nodes). */
  onReleased?: (ids: number[]) => void;
};

export class Fence {
  readonly #target: FenceTarget;
  readonly #events: NodeEvents;
  readonly #options: FenceOptions;
  /** When the write of the latest heartbeat known to have landed began (epoch ms); 0 before the first. */
  #lastLandedAt = 0;
  #fencedAt: number | null = null;
  #timer: NodeJS.Timeout | null = null;
  #rejoining: Promise<void> | null = null;
  /** Handed back since the node fenced (a rejoin can take more than one try). */
  #released: number[] = [];
  #closed = false;

  constructor(target: FenceTarget, events: NodeEvents, options: FenceOptions) {
    this.#target = target;
    this.#events = events;
    this.#options = options;
  }

  /** The heartbeat age at which the node fences. */
  get thresholdMs(): number {
    return this.#options.deadAfterMs - this.#options.marginMs;
  }

  get fenced(): boolean {
    return this.#fencedAt !== null;
  }

  /**
   * A heartbeat whose write began at `startedAt` (epoch ms) reached the store. Arms the fence for the threshold
   * after it; when fenced and that heartbeat is recent, rejoins (resolves once rejoined, or rejects with the
   * store's error: still fenced, to be tried again at the next heartbeat).
   */
  async landed(startedAt: number): Promise<void> {
    if (this.#closed) return;
    if (startedAt > this.#lastLandedAt) {
      this.#lastLandedAt = startedAt;
      this.#arm();
    }
    if (this.#fencedAt !== null && this.#fresh()) {
      this.#rejoining ??= this.#rejoin().finally(() => (this.#rejoining = null));
      await this.#rejoining;
    }
  }

  /** Stops watching (the node is stopping). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #fresh(now = Date.now()): boolean {
    return now - this.#lastLandedAt < this.thresholdMs;
  }

  #arm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#check(), Math.max(0, this.#lastLandedAt + this.thresholdMs - Date.now()));
  }

  #check(): void {
    this.#timer = null;
    if (this.#closed || this.#fencedAt !== null) return;
    const now = Date.now();
    if (this.#fresh(now)) {
      this.#arm();
      return;
    }
    this.#fencedAt = now;
    const tasks = this.#target.fence(this.#options.marginMs);
    this.#events.emit("node:fenced", { node: this.#options.node, silentMs: now - this.#lastLandedAt, tasks });
  }

  async #rejoin(): Promise<void> {
    const released = await this.#target.releaseAbandoned(new Date());
    this.#released.push(...released);
    if (released.length > 0) this.#options.onReleased?.(released);
    // The release took time: rejoin only if the heartbeat that allowed it is still recent (else the next one will).
    if (this.#fencedAt === null || this.#closed || !this.#fresh()) return;
    this.#target.unfence();
    const fencedMs = Date.now() - this.#fencedAt;
    this.#fencedAt = null;
    const all = this.#released;
    this.#released = [];
    this.#events.emit("node:unfenced", { node: this.#options.node, fencedMs, released: all });
    // The fence's timer stood still while fenced: arm it for this heartbeat.
    this.#arm();
  }
}
