/**
 * The worker of one queue on this node: claims tasks in batches up to its free slots, runs each as an
 * Execution, and has the outcome recorder record how each ended. Claims happen when the bus says work arrived, when a slot
 * frees up, and otherwise on a slow backstop poll; never in a tight loop.
 *
 * The claim loop is a supervised service, but running executions belong to this object, not to the loop:
 * if the loop crashes and restarts, tasks in flight carry on.
 *
 * Fenced (fence.ts: this node lost the store), the worker claims nothing, stops what it runs, and keeps the ids of
 * those tasks (and of any a claim or insert in flight gives it meanwhile, which it does not start) until the node
 * hands them back to the store; only then does it claim again.
 */
import type { Task } from "../core/task.ts";
import type { Bus } from "../bus/bus.ts";
import type { Store } from "../store/store.ts";
import type { Definitions } from "./definitions.ts";
import { Execution, type ExecutionOutcome } from "./execution.ts";
import type { Log } from "./handler.ts";
import type { NodeEvents } from "./node-events.ts";
import type { Notifier } from "./notifier.ts";
import type { FaultPlan } from "./faults.ts";
import type { OutcomeRecorder } from "./outcomes.ts";
import type { ProgressWriter } from "./progress-writer.ts";
import type { Service } from "./service.ts";
import { Wakeup } from "./wakeup.ts";

export type QueueWorkerDeps = {
  store: Store;
  /** Wake-ups for this queue and cancels of its tasks arrive here. */
  bus: Bus;
  notifier: Notifier;
  events: NodeEvents;
  outcomes: OutcomeRecorder;
  /** Failure injection: attempts to fail on purpose (none unless the node allows faults and one was asked). */
  faults: FaultPlan;
  nodeId: string;
  definitions: Definitions;
  progress: ProgressWriter;
  logger: Log;
  /** Builds the logger a handler gets. */
  taskLogger: (task: Task) => Log;
};

export type QueueWorkerOptions = {
  queue: string;
  types: string[];
  concurrency: number;
  /** Most tasks claimed in one statement. */
  batchSize: number;
  /** Backstop: how often to look for work (and for tasks stopped elsewhere) without a wake-up. */
  pollIntervalMs: number;
};

type Running = { execution: Execution; timeout: NodeJS.Timeout | null };

export class QueueWorker implements Service {
  readonly name: string;
  readonly options: QueueWorkerOptions;
  readonly #deps: QueueWorkerDeps;
  /** The attempt of each task this worker runs. */
  readonly #running = new Map<number, Running>();
  /**
   * Older attempts still running of tasks this worker claimed again: the store took them from this node (a rescue
   * that judged it dead) and they were stopped; they hold their slots until they end.
   */
  readonly #stale = new Set<Running>();
  readonly #wakeup = new Wakeup();
  #idle: (() => void) | null = null;
  /**
   * Whether the queue may hold more work than was claimed: the last claim came back full, or a wake-up said
   * tasks arrived. A freed slot starts a claim only then; otherwise it would cost an empty write transaction.
   */
  #backlog = true;
  /** Slots promised to tasks being enqueued on this node to start at once (see reserveSlot). */
  #reserved = 0;
  /**
   * The slots the claim in flight may fill: an insert must not reserve them meanwhile. Without this, a task enqueued
   * during a poll's claim started in a slot that the claim then filled too (5 tasks at once at concurrency 3).
   */
  #claiming = 0;
  /** Whether the claim loop runs: only then may enqueues start tasks here directly. */
  #accepting = false;
  #fenced = false;
  /** Tasks that are running on this node in the store but that it gave up when it fenced: to hand back. */
  readonly #abandoned = new Set<number>();

  constructor(deps: QueueWorkerDeps, options: QueueWorkerOptions) {
    this.name = `queue:${options.queue}`;
    this.#deps = deps;
    this.options = options;
  }

  /** Executions running, stale attempts included: each holds a slot. */
  /**
   * Changes how many tasks run here at once, at once: a raise claims for the new slots now, a cut lets running
   * tasks finish and claims no more until the count is under the new limit.
   */
  setConcurrency(concurrency: number): void {
    if (concurrency === this.options.concurrency) return;
    this.options.concurrency = concurrency;
    this.#backlog = true;
    this.#wakeup.ring();
  }

  get runningCount(): number {
    return this.#running.size + this.#stale.size;
  }

  /** The tasks whose current attempt runs here. */
  runningIds(): number[] {
    return [...this.#running.keys()];
  }

  async run(signal: AbortSignal): Promise<void> {
    const { bus } = this.#deps;
    const unsubscribeWake = bus.subscribe("wake", ({ queue }) => {
      if (queue !== this.options.queue) return;
      this.#backlog = true;
      this.#wakeup.ring();
    });
    const unsubscribeCancel = bus.subscribe("cancel", ({ id }) => this.stopTask(id, "cancelled"));
    let lastCheck = Date.now();
    this.#accepting = true;
    try {
      while (!signal.aborted) {
        // Let every handler that settles in this turn free its slot first: one claim of many, not many of one.
        await new Promise((resolve) => setImmediate(resolve));
        const limit = this.#fenced
          ? 0
          : Math.min(this.options.concurrency - this.runningCount - this.#reserved, this.options.batchSize);
        if (limit > 0) this.#backlog = false;
        const claimed = limit > 0 ? await this.#claim(limit) : 0;
        if (limit > 0 && claimed === limit) this.#backlog = true;
        if (signal.aborted) break;
        if (limit > 0 && claimed === limit) continue; // a full batch: there may be more
        if (!this.#fenced && Date.now() - lastCheck >= this.options.pollIntervalMs) {
          lastCheck = Date.now();
          await this.#stopTasksEndedElsewhere();
        }
        await this.#wakeup.wait(this.options.pollIntervalMs, signal);
      }
    } finally {
      this.#accepting = false;
      unsubscribeWake();
      unsubscribeCancel();
    }
  }

  /**
   * Promise a free slot to a task of `type` being enqueued on this node, so that the insert can start it at
   * once (one transaction from enqueue to start). Only when nothing is known to wait in the queue: a task
   * already queued there must not be overtaken. Each reservation ends with adopt() or unreserve().
   */
  reserveSlot(type: string): boolean {
    if (!this.#accepting || this.#fenced || this.#backlog || !this.options.types.includes(type)) return false;
    if (this.runningCount + this.#reserved + this.#claiming >= this.options.concurrency) return false;
    this.#reserved++;
    return true;
  }

  /**
   * Run a task the store started on this node in the insert that used a reserved slot. If the worker stopped
   * meanwhile (shutdown), the task goes back to the queue instead, as the shutdown does with the others.
   */
  adopt(task: Task): void {
    this.#reserved--;
    if (this.#accepting) {
      this.#start(task);
      return;
    }
    const { store, notifier, nodeId, logger } = this.#deps;
    // One try: if it fails, the task stays running on a node that is going away, and the rescuer takes it.
    store.taskRelease({ node: nodeId, ids: [task.id], now: new Date() }).then(
      () => notifier.queuesReady([task.queue], { logged: true }),
      (error: unknown) =>
        logger.warn("handing back a task started during shutdown failed", { err: error, taskId: task.id }),
    );
  }

  /** Give back a reserved slot the insert did not use (a duplicate key, a paused queue, a failed insert). */
  unreserve(): void {
    this.#reserved--;
    this.#wakeup.ring();
  }

  /**
   * This node lost the store: claim nothing more, and stop every running attempt (its thread ended within `graceMs`
   * at most) before the leader hands it to another node. Returns the ids stopped.
   */
  fence(graceMs: number): number[] {
    this.#fenced = true;
    const ids = [...this.#running.keys()];
    for (const [id, entry] of this.#running) {
      this.#abandoned.add(id);
      entry.execution.stop("fenced", graceMs);
    }
    return ids;
  }

  /** The tasks to hand back before this worker may claim again. */
  abandoned(): number[] {
    return [...this.#abandoned];
  }

  /** These tasks were handed back (or had been taken from this node already). */
  forget(ids: number[]): void {
    for (const id of ids) this.#abandoned.delete(id);
  }

  /** Claim again, at once: the node has handed back everything it abandoned. */
  unfence(): void {
    if (this.#abandoned.size > 0) throw new Error(`${this.name}: tasks it abandoned are not handed back yet`);
    this.#fenced = false;
    this.#backlog = true;
    this.#wakeup.ring();
  }

  /** Stop a task if this worker runs it; returns whether it did. */
  stopTask(id: number, reason: "cancelled" | "timeout" | "shutdown"): boolean {
    const entry = this.#running.get(id);
    if (entry === undefined) return false;
    entry.execution.stop(reason);
    return true;
  }

  /** Resolves when nothing runs, or after `ms`; returns the executions still running then. */
  async settle(ms: number): Promise<Execution[]> {
    if (this.runningCount > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        this.#idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#idle = null;
    }
    return [...this.#running.values(), ...this.#stale].map((entry) => entry.execution);
  }

  async #claim(limit: number): Promise<number> {
    const { store, nodeId } = this.#deps;
    this.#claiming = limit;
    let tasks: Task[];
    try {
      tasks = await store.taskClaim({
        queue: this.options.queue,
        types: this.options.types,
        node: nodeId,
        limit,
        now: new Date(),
      });
    } finally {
      this.#claiming = 0;
    }
    for (const task of tasks) this.#start(task);
    if (tasks.length > 0) this.#deps.notifier.eventsWritten();
    return tasks.length;
  }

  #start(task: Task): void {
    if (this.#fenced) {
      // A claim or an insert that was in flight when the node fenced: the store may judge this node dead any
      // moment and hand the task on, so it must not start here. Handed back with the others.
      this.#abandoned.add(task.id);
      return;
    }
    const { definitions, progress, taskLogger } = this.#deps;
    const defined = definitions.get(task.type);
    if (defined === undefined) throw new Error(`claimed a task of unknown type ${task.type}`);
    const definition = this.#deps.faults.definitionFor(defined);
    const execution = new Execution(task, definition, {
      onProgress: (t, value) => progress.report(t, value),
      logger: () => taskLogger(task),
    });
    const timeout = task.timeoutMs === null ? null : setTimeout(() => execution.stop("timeout"), task.timeoutMs);
    // An older attempt of this task still runs here: the store took it from this node and gave it back as a new
    // attempt. Stop the stale one now rather than at the next poll, and keep it counted until it ends.
    const older = this.#running.get(task.id);
    if (older !== undefined) {
      this.#stale.add(older);
      older.execution.stop("cancelled");
    }
    this.#running.set(task.id, { execution, timeout });
    this.#deps.events.emit("task:started", { task });
    void execution.outcome.then((outcome) => this.#finish(execution, outcome));
  }

  async #finish(execution: Execution, outcome: ExecutionOutcome): Promise<void> {
    const { task } = execution;
    const current = this.#running.get(task.id);
    const entry = current?.execution === execution ? current : [...this.#stale].find((e) => e.execution === execution);
    if (entry?.timeout != null) clearTimeout(entry.timeout);
    if (entry === current) this.#running.delete(task.id);
    else if (entry !== undefined) this.#stale.delete(entry);
    if (this.#backlog) this.#wakeup.ring();
    if (this.runningCount === 0) this.#idle?.();
    try {
      await this.#deps.outcomes.record(execution, outcome);
    } catch (error) {
      this.#deps.logger.error("recording a task's outcome failed", { err: error, taskId: task.id });
    }
  }

  /** Backstop for a cancel made by another process (or a rescue that judged this node dead). */
  async #stopTasksEndedElsewhere(): Promise<void> {
    if (this.#running.size === 0) return;
    const states = await this.#deps.store.taskStates({ ids: [...this.#running.keys()] });
    for (const { id, state, attempt } of states) {
      const entry = this.#running.get(id);
      if (entry !== undefined && (state !== "running" || attempt !== entry.execution.task.attempt)) {
        entry.execution.stop("cancelled");
      }
    }
  }
}
