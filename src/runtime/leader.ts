/**
 * Leader election through a lease row in the store: one node at a time holds "leader" and runs the
 * cluster-wide services (rescuer, cron, pruner, singletons) under its own supervisor. The holder renews
 * the lease every interval; a node that cannot renew before the lease expires steps down at once, so two
 * nodes never both believe they lead for longer than a clock's error. A dead leader is replaced when its
 * lease expires; a leader that stops gracefully releases the lease, and another node takes over at once.
 */
import type { Store } from "../store/store.ts";
import type { NodeEvents } from "./node-events.ts";
import { sleep } from "./wakeup.ts";
import type { Service } from "./service.ts";
import type { Supervisor, SupervisorTree } from "./supervisor.ts";

export const LEADER_LEASE = "leader";

export type LeaderOptions = {
  node: string;
  /** How often to take or renew the lease. */
  intervalMs: number;
  /** How long a lease lasts without renewal: the longest a dead leader goes unreplaced. */
  ttlMs: number;
};

export class LeaderElector implements Service {
  readonly name = "leader-elector";
  readonly #store: Store;
  readonly #options: LeaderOptions;
  readonly #makeSupervisor: () => Supervisor;
  readonly #events: NodeEvents;
  #supervisor: Supervisor | null = null;
  /** Until when the lease is known to be ours (local clock), renewed on every successful acquire. */
  #heldUntil = 0;
  /** Steps down when the lease runs out unrenewed, even if a renewal call hangs. */
  #expiry: NodeJS.Timeout | null = null;

  constructor(store: Store, options: LeaderOptions, makeSupervisor: () => Supervisor, events: NodeEvents) {
    this.#store = store;
    this.#options = options;
    this.#makeSupervisor = makeSupervisor;
    this.#events = events;
  }

  get isLeader(): boolean {
    return this.#supervisor !== null;
  }

  /** The leader-only services' tree while this node leads. */
  tree(): SupervisorTree | null {
    return this.#supervisor?.tree() ?? null;
  }

  async run(signal: AbortSignal): Promise<void> {
    try {
      while (!signal.aborted) {
        const waitMs = await this.#attempt();
        await sleep(waitMs, signal);
      }
    } finally {
      await this.#stepDown();
      // Let another node lead at once rather than after the lease runs out.
      await this.#store.leaseRelease({ name: LEADER_LEASE, node: this.#options.node }).catch(() => {});
    }
  }

  /** Takes or renews the lease; returns how long to wait before the next attempt. */
  async #attempt(): Promise<number> {
    const started = Date.now();
    let held = false;
    try {
      held = await this.#store.leaseAcquire({
        name: LEADER_LEASE,
        node: this.#options.node,
        ttlMs: this.#options.ttlMs,
        now: new Date(started),
      });
    } catch (error) {
      // Unsure whether we still hold it: keep leading only while the last confirmed lease lasts.
      if (Date.now() >= this.#heldUntil) await this.#stepDown();
      throw error;
    }
    if (held) {
      // Counted from before the call, so our view of the lease never outlasts the store's.
      this.#heldUntil = started + this.#options.ttlMs;
      if (this.#expiry !== null) clearTimeout(this.#expiry);
      this.#expiry = setTimeout(() => void this.#stepDown(), Math.max(0, this.#heldUntil - Date.now()));
      if (this.#supervisor === null) {
        this.#supervisor = this.#makeSupervisor();
        this.#supervisor.start();
        this.#events.emit("leader:gained", { node: this.#options.node });
      }
      return this.#options.intervalMs;
    }
    await this.#stepDown();
    return this.#untilExpiry();
  }

  /**
   * A follower tries again when the holder's lease runs out, if that comes before the next interval: a killed
   * leader is replaced at its lease's end rather than up to an interval later, which would add to the failover
   * time of the tasks it ran (its rescuer died with it). The lease is the holder's clock, as its expiry always is.
   */
  async #untilExpiry(): Promise<number> {
    const interval = this.#options.intervalMs;
    const lease = await this.#store.leaseGet({ name: LEADER_LEASE }).catch(() => null);
    if (lease === null || lease.node === this.#options.node) return interval;
    // A few ms past the end, so that the attempt finds it expired (the store compares expires_at <= now); never a
    // busy loop, whatever the clocks say.
    return Math.min(interval, Math.max(10, lease.expiresAt.getTime() - Date.now() + 5));
  }

  async #stepDown(): Promise<void> {
    if (this.#expiry !== null) clearTimeout(this.#expiry);
    this.#expiry = null;
    const supervisor = this.#supervisor;
    if (supervisor === null) return;
    this.#supervisor = null;
    this.#heldUntil = 0;
    await supervisor.stop();
    this.#events.emit("leader:lost", { node: this.#options.node });
  }
}
