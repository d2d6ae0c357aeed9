/**
 * Keeps this node's row fresh, so that others (and the rescuer) can tell it is alive, and publishes what
 * the node reports about itself (its supervision tree, its queues) for /api/nodes and the dashboard.
 *
 * A failed beat is no crash: the heartbeat tries again soon, and says how long the store has been silent through
 * the fence (fence.ts), which stops this node's work before the leader hands it on. No beat waits on the store for
 * more than an interval: a write that hangs (a connection cut off without a reset) does not hold up the next one,
 * which may find a connection that works; the hung one still counts if it lands, for the instant it carries.
 */
import type { Json } from "../core/task.ts";
import type { NodeRecord, Store } from "../store/store.ts";
import type { Fence } from "./fence.ts";
import type { Log } from "./handler.ts";
import type { Service } from "./service.ts";
import { sleep } from "./wakeup.ts";

/** Beyond this many hung writes, a beat waits on the latest rather than pile another one behind them. */
const MAX_WRITES_IN_FLIGHT = 2;

export type HeartbeatOptions = {
  intervalMs: number;
  deadAfterMs: number;
  /** Told of every beat that lands; null: this node does not fence (one host: fence.ts). */
  fence: Fence | null;
  logger: Log;
};

export class Heartbeat implements Service {
  readonly name = "heartbeat";
  readonly #store: Store;
  readonly #node: Omit<NodeRecord, "heartbeatAt" | "info">;
  readonly #intervalMs: number;
  readonly #deadAfterMs: number;
  readonly #fence: Fence | null;
  readonly #logger: Log;
  readonly #info: () => Json;
  #lastBeatAt = 0;
  #stalledUntil = 0;
  /** Writes begun and not settled, and the latest of them. */
  #inFlight = 0;
  #latest: Promise<void> | null = null;
  /** Consecutive beats that failed, to log the first of a run and not every retry. */
  #failures = 0;

  constructor(
    store: Store,
    node: Omit<NodeRecord, "heartbeatAt" | "info">,
    options: HeartbeatOptions,
    info: () => Json,
  ) {
    this.#store = store;
    this.#node = node;
    this.#intervalMs = options.intervalMs;
    this.#deadAfterMs = options.deadAfterMs;
    this.#fence = options.fence;
    this.#logger = options.logger;
    this.#info = info;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let ok = true;
      try {
        await this.beat();
        if (this.#failures > 0)
          this.#logger.info("the heartbeat reaches the store again", { failedBeats: this.#failures });
        this.#failures = 0;
      } catch (error) {
        ok = false;
        if (this.#failures++ === 0) this.#logger.warn("a heartbeat did not reach the store", { err: error });
      }
      // After a failure, soon again: a single lost beat must not let the fence's deadline come near.
      await sleep(ok ? this.#intervalMs : Math.max(10, Math.floor(this.#intervalMs / 4)), signal);
    }
  }

  /**
   * The node's first heartbeat, waited for until it lands or fails: it may open the store's liveness connection, which
   * takes longer than an interval on a loaded machine (the store's own timeouts bound it).
   */
  first(): Promise<void> {
    return this.#write();
  }

  /** Writes one heartbeat; rejects if it failed or has not landed within an interval (it may land later). */
  async beat(): Promise<void> {
    const write = this.#inFlight < MAX_WRITES_IN_FLIGHT || this.#latest === null ? this.#write() : this.#latest;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the heartbeat's write has not landed after ${this.#intervalMs} ms`)),
        this.#intervalMs,
      );
    });
    try {
      await Promise.race([write, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  #write(): Promise<void> {
    const startedAt = Date.now();
    this.#inFlight++;
    const write = this.#store
      .nodeHeartbeat({ node: { ...this.#node, info: this.#info() }, now: new Date(startedAt) })
      .then(() => this.#landed(startedAt))
      .finally(() => this.#inFlight--);
    this.#latest = write;
    return write;
  }

  #landed(startedAt: number): void {
    const now = Date.now();
    // A beat that came late means the store (or this process) stalled: other nodes may have stalled too,
    // so their silence proves nothing until a full dead-time has passed with beats on time again.
    if (this.#lastBeatAt > 0 && now - this.#lastBeatAt > 2 * this.#intervalMs)
      this.#stalledUntil = now + this.#deadAfterMs;
    this.#lastBeatAt = Math.max(this.#lastBeatAt, now);
    this.#fence
      ?.landed(startedAt)
      .catch((error: unknown) =>
        this.#logger.warn("the store is back, but handing back the tasks this node gave up failed", { err: error }),
      );
  }

  /** Whether this node can judge others now: its own beats have been on time for a dead-time. */
  get trustworthy(): boolean {
    return (
      this.#lastBeatAt > 0 && Date.now() >= this.#stalledUntil && Date.now() - this.#lastBeatAt <= 2 * this.#intervalMs
    );
  }
}
