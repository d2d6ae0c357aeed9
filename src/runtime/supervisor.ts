/**
 * An OTP-style supervisor for a node's background services (DESIGN §1, principle 3): crashed services restart
 * with a backoff, a restart budget stops a crash loop, and a Supervisor is itself a Service so trees nest.
 */
import { isStoreUnavailable } from "../core/store-unavailable.ts";
import type { Service } from "./service.ts";

export type { Service } from "./service.ts";

export type RestartStrategy = "one_for_one" | "one_for_all";

export type SupervisorOptions = {
  name: string;
  /** one_for_one restarts the crashed child alone; one_for_all stops the others and restarts them all. */
  strategy?: RestartStrategy;
  /**
   * More than this many restarts within `periodMs` and the supervisor gives up. Default 5. Crashes because the store
   * is unavailable (isStoreUnavailable) are restarted but not counted.
   */
  maxRestarts?: number;
  /** The budget's sliding window, and how long a child must run for its backoff to reset. Default 10 000. */
  periodMs?: number;
  /** Delay before a restart, doubling per consecutive restart of the same child. Default 100 / 5 000 ms. */
  restartDelay?: { baseMs: number; maxMs: number };
  onEvent?: (event: SupervisorEvent) => void;
};

export type SupervisorEvent = {
  type: "started" | "crashed" | "restarted" | "giveup" | "stopped";
  supervisor: string;
  service?: string;
  error?: unknown;
};

export type SupervisorState = "starting" | "running" | "stopped" | "failed";
export type ChildState = "running" | "restarting" | "stopped" | "failed";

export type ChildTree = {
  name: string;
  state: ChildState;
  restarts: number;
  lastError: string | null;
  lastErrorAt: string | null;
  startedAt: string | null;
  /** The children of a child that is itself a Supervisor. */
  children?: ChildTree[];
};

export type SupervisorTree = {
  name: string;
  strategy: RestartStrategy;
  state: SupervisorState;
  restarts: number;
  children: ChildTree[];
};

type Child = {
  readonly service: Service;
  state: ChildState;
  restarts: number;
  /** Restarts since the child last ran a whole period without crashing; the backoff's exponent. */
  consecutive: number;
  lastError: string | null;
  lastErrorAt: number | null;
  startedAt: number | null;
  controller: AbortController | null;
  /** Settles, never rejects, once the current run() has returned or thrown. */
  running: Promise<void>;
};

export class Supervisor implements Service {
  readonly name: string;
  private readonly strategy: RestartStrategy;
  private readonly maxRestarts: number;
  private readonly periodMs: number;
  private readonly restartDelay: { baseMs: number; maxMs: number };
  private readonly onEvent: ((event: SupervisorEvent) => void) | undefined;
  private readonly children: Child[];
  private state: SupervisorState = "stopped";
  private restarts = 0;
  /** When recent restarts were decided: the sliding window the budget is checked against. */
  private restartTimes: number[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  /** True while children are being stopped, so their exits are not taken for crashes. */
  private closing = false;
  private stopping: Promise<void> | null = null;
  /** Resolves when the supervisor stops, rejects when it gives up: what run() reports to a parent. */
  private done = Promise.withResolvers<void>();

  constructor(options: SupervisorOptions, children: Service[]) {
    this.name = options.name;
    this.strategy = options.strategy ?? "one_for_one";
    this.maxRestarts = options.maxRestarts ?? 5;
    this.periodMs = options.periodMs ?? 10_000;
    this.restartDelay = options.restartDelay ?? { baseMs: 100, maxMs: 5_000 };
    this.onEvent = options.onEvent;
    if (!Number.isInteger(this.maxRestarts) || this.maxRestarts < 0) {
      throw new RangeError(`supervisor ${this.name}: maxRestarts must be a non-negative integer`);
    }
    if (!(this.periodMs > 0)) throw new RangeError(`supervisor ${this.name}: periodMs must be positive`);
    if (!(this.restartDelay.baseMs >= 0 && this.restartDelay.maxMs >= this.restartDelay.baseMs)) {
      throw new RangeError(`supervisor ${this.name}: restartDelay needs 0 <= baseMs <= maxMs`);
    }
    this.children = children.map((service) => ({
      service,
      state: "stopped",
      restarts: 0,
      consecutive: 0,
      lastError: null,
      lastErrorAt: null,
      startedAt: null,
      controller: null,
      running: Promise.resolve(),
    }));
  }

  /** Starts every child and returns at once. A no-op when already running; restarts a stopped or failed tree. */
  start(): void {
    if (this.state === "running" || this.state === "starting") return;
    if (this.stopping) throw new Error(`supervisor ${this.name} is still stopping`);
    this.state = "starting";
    this.restartTimes = [];
    this.done = Promise.withResolvers<void>();
    // Whoever called start() rather than run() learns of a give-up through events and tree(), not a rejection.
    this.done.promise.catch(() => {});
    for (const child of this.children) {
      child.consecutive = 0;
      this.launch(child, "started");
    }
    this.state = "running";
    this.emit({ type: "started" });
  }

  /** Runs the tree as a child of another supervisor: resolves once stopped by `signal`, rejects on give-up. */
  async run(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    this.start();
    const onAbort = (): void => void this.stop();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await this.done.promise;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Aborts every child (in reverse start order) and waits for each to finish its cleanup. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    if (this.state !== "running") return Promise.resolve();
    this.stopping = this.close(null).finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  /**
   * Failure injection (demos and drills, off unless the node allows it): makes the running child named `service`,
   * here or in a nested supervisor, stop as if it had crashed with `error`. It is asked to stop (its signal aborts),
   * so it cleans up as it would on a stop, and then it is handled as a crash: restarted after its backoff,
   * counted against the restart budget. Returns whether such a child was running.
   */
  crash(service: string, error: Error): boolean {
    for (const child of this.children) {
      if (child.service.name === service && child.state === "running" && child.controller !== null) {
        child.controller.abort(new InjectedCrash(error));
        return true;
      }
      if (child.service instanceof Supervisor && child.service.crash(service, error)) return true;
    }
    return false;
  }

  tree(): SupervisorTree {
    const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
    return {
      name: this.name,
      strategy: this.strategy,
      state: this.state,
      restarts: this.restarts,
      children: this.children.map((child) => {
        const entry: ChildTree = {
          name: child.service.name,
          state: child.state,
          restarts: child.restarts,
          lastError: child.lastError,
          lastErrorAt: iso(child.lastErrorAt),
          startedAt: iso(child.startedAt),
        };
        if (child.service instanceof Supervisor) entry.children = child.service.tree().children;
        return entry;
      }),
    };
  }

  private launch(child: Child, event: "started" | "restarted"): void {
    const controller = new AbortController();
    child.controller = controller;
    child.state = "running";
    child.startedAt = Date.now();
    if (event === "restarted") child.restarts++;
    let result: Promise<void>;
    try {
      result = Promise.resolve(child.service.run(controller.signal));
    } catch (error) {
      result = Promise.reject(error);
    }
    child.running = result.then(
      () => this.onExit(child, controller, new Error(`service ${child.service.name} returned before it was stopped`)),
      (error: unknown) => this.onExit(child, controller, error),
    );
    this.emit({ type: event, service: child.service.name });
  }

  private onExit(child: Child, controller: AbortController, exit: unknown): void {
    const { reason } = controller.signal;
    // We asked it to stop: whatever it threw on the way out is no crash, unless the stop was an injected crash.
    if (controller.signal.aborted && !(reason instanceof InjectedCrash)) return;
    const error = reason instanceof InjectedCrash ? reason.error : exit;
    child.controller = null;
    child.lastError = error instanceof Error ? error.message : String(error);
    child.lastErrorAt = Date.now();
    this.emit({ type: "crashed", service: child.service.name, error });
    // A child already being stopped or restarted (a sibling's one_for_all restart, our own stop) is handled there.
    if (this.state !== "running" || this.closing || child.state !== "running") return;

    const now = child.lastErrorAt;
    if (child.startedAt !== null && now - child.startedAt >= this.periodMs) child.consecutive = 0;
    this.restartTimes = this.restartTimes.filter((time) => now - time < this.periodMs);
    // A crash because the store is away (down, unreachable, locked) is no crash loop of the service's own: every
    // service that touches the store crashes with it for as long as it is away, which may be minutes. Counted, they
    // would spend the budget in seconds and leave the node failed for good after the store came back; uncounted,
    // they are still restarted with the backoff, so a long outage costs a restart every maxMs per service.
    if (!isStoreUnavailable(error)) this.restartTimes.push(now);
    if (this.restartTimes.length > this.maxRestarts) {
      this.state = "failed";
      this.stopping = this.close({ failed: child, cause: error }).finally(() => {
        this.stopping = null;
      });
      return;
    }

    const delay = Math.min(this.restartDelay.maxMs, this.restartDelay.baseMs * 2 ** child.consecutive);
    child.consecutive++;
    if (this.strategy === "one_for_one") {
      child.state = "restarting";
      this.after(delay, () => {
        this.restarts++;
        this.launch(child, "restarted");
      });
    } else {
      void this.restartAll(delay);
    }
  }

  private async restartAll(delay: number): Promise<void> {
    // Mark all first, so a sibling crashing before its turn to stop is not handled as a second crash.
    for (const child of this.children) child.state = "restarting";
    await this.stopChildren("restarting");
    if (this.state !== "running" || this.closing) return;
    this.after(delay, () => {
      this.restarts++;
      for (const child of this.children) this.launch(child, "restarted");
    });
  }

  private after(delayMs: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.state === "running" && !this.closing) action();
    }, delayMs);
    this.timers.add(timer);
  }

  private async stopChildren(finalState: ChildState): Promise<void> {
    for (const child of [...this.children].reverse()) {
      child.controller?.abort();
      await child.running;
      child.controller = null;
      child.state = finalState;
    }
  }

  private async close(giveUp: { failed: Child; cause: unknown } | null): Promise<void> {
    this.closing = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.stopChildren("stopped");
    this.closing = false;
    if (giveUp === null) {
      this.state = "stopped";
      this.emit({ type: "stopped" });
      this.done.resolve();
      return;
    }
    giveUp.failed.state = "failed";
    this.state = "failed";
    const error = new Error(
      `supervisor ${this.name} gave up: more than ${this.maxRestarts} restarts in ${this.periodMs} ms`,
      { cause: giveUp.cause },
    );
    this.emit({ type: "giveup", error });
    this.done.reject(error);
  }

  private emit(event: Omit<SupervisorEvent, "supervisor">): void {
    try {
      this.onEvent?.({ supervisor: this.name, ...event });
    } catch {
      // An observer's bug must not take the supervision tree down with it.
    }
  }
}

/** The abort reason of a crash injected by Supervisor.crash(). */
class InjectedCrash {
  readonly error: Error;
  constructor(error: Error) {
    this.error = error;
  }
}
