/**
 * Conveyor: the public API of a node. Define task types, enqueue, stop, retry, look and wait; `start()`
 * runs the node's services under supervision, `stop()` shuts down gracefully.
 *
 *   const conveyor = new Conveyor({ database: "./conveyor.db" });
 *   conveyor.define("email.send", async (data, ctx) => { ... }, { maxAttempts: 5 });
 *   await conveyor.start();
 *   const task = await conveyor.enqueue("email.send", { to: "a@b.c" });
 *   const result = await conveyor.result(task.id);
 */
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import pino, { type Logger } from "pino";
import { ConfigError, ConveyorError, NotFoundError, ValidationError } from "../core/errors.ts";
import { isStoreUnavailable } from "../core/store-unavailable.ts";
import { normalizeTaskInput } from "../core/task-input.ts";
import type { Json, LogEvent, Task, TaskEvent, TaskInput } from "../core/task.ts";
import type { Bus } from "../bus/bus.ts";
import { LocalBus } from "../bus/local-bus.ts";
import { connect } from "./connect.ts";
import type { NodeRecord, QueueStats, Schedule, Store, TaskInsertOutcome } from "../store/store.ts";
import { normalizeSchedule, type ScheduleSpec } from "../core/schedule-input.ts";
import { cronOf } from "./cron-scheduler.ts";
import { LEADER_LEASE } from "./leader.ts";
import { CompletionBuffer } from "./completion-buffer.ts";
import { Definitions } from "./definitions.ts";
import { EventFeed } from "./event-feed.ts";
import type { TaskHandler, TaskTypeOptions, ThreadHandlerRef } from "./handler.ts";
import { resolveOptions, type ConveyorOptions, type ResolvedOptions } from "./options.ts";
import { ProgressWriter } from "./progress-writer.ts";
import type { SupervisorTree } from "./supervisor.ts";
import { buildNodeServices, type NodeServices, logOf } from "./node-services.ts";
import { logNodeEvents } from "./node-event-log.ts";
import { NodeEvents } from "./node-events.ts";
import { Notifier } from "./notifier.ts";
import { listTasks, type TaskListQuery, type TaskPage } from "./task-listing.ts";
import { TaskWaiter } from "./task-waiter.ts";
import {
  applyToIds,
  BULK_QUEUE,
  BULK_TYPE,
  type BulkAction,
  type BulkFilter,
  type BulkOutcome,
  type BulkTarget,
  bulkHandler,
  checkAction,
  MAX_BULK_IDS,
} from "./bulk.ts";
import { type Fault, FaultPlan, InjectedFault } from "./faults.ts";
import { type ClusterStats, clusterStats } from "./cluster-stats.ts";
import { appendNodesEvent, writeClusterEvents } from "./cluster-log.ts";
import { Live } from "./live.ts";
import { LiveFeed, type LivePosition, type LiveSubscription } from "./live-feed.ts";

/** How often a node on a store without notifications (SQLite) checks whether another process wrote to it. */
const FOREIGN_WRITE_CHECK_MS = 20;

export type ClusterView = {
  leader: string | null;
  nodes: (NodeRecord & { heartbeatAgeMs: number; alive: boolean; leader: boolean })[];
};

export type ScheduleView = Schedule & { nextRun: Date | null };

function withNextRun(schedule: Schedule): ScheduleView {
  return { ...schedule, nextRun: schedule.enabled ? cronOf(schedule).nextRun() : null };
}

export type NodeTree = { name: string; state: string; leader: boolean; children: SupervisorTree[] };

export class Conveyor {
  readonly store: Store;
  readonly bus: Bus;
  readonly logger: Logger;
  readonly nodeId: string;
  readonly nodeName: string;
  readonly options: ResolvedOptions;
  /** Where its store is, in words, for logs. */
  readonly where: string;
  /** What happens on this node, as typed events: tasks, services, leadership, membership, the bus. */
  readonly events: NodeEvents;
  /** The live stream: channels over the event log, with replay (docs/live-protocol.md). */
  readonly live: Live;
  readonly #ownsStore: boolean;
  readonly #ownsBus: boolean;
  readonly #definitions = new Definitions();
  readonly #completions: CompletionBuffer;
  readonly #progress: ProgressWriter;
  readonly #feed: EventFeed;
  readonly #faults = new FaultPlan();
  readonly #notifier: Notifier;
  readonly #waiter: TaskWaiter;
  readonly #startedAt = new Date();
  #services: NodeServices | null = null;
  #migrated: Promise<unknown> | null = null;
  #busStarting: Promise<void> | null = null;
  #stopClusterLog: (() => Promise<boolean>) | null = null;
  #stopWatchingStore: (() => void) | null = null;
  #state: "idle" | "starting" | "running" | "stopping" | "stopped" = "idle";
  /** Aborted when stop() begins, to end every wait at once. */
  readonly #stopping = new AbortController();

  constructor(options: ConveyorOptions = {}) {
    this.options = resolveOptions(options);
    this.logger = options.logger ?? pino({ level: process.env.CONVEYOR_LOG_LEVEL ?? "warn" });
    // A node closes what it opened; a store or bus handed in is the caller's to close.
    this.#ownsStore = options.store === undefined;
    this.#ownsBus = options.bus === undefined;
    if (options.store === undefined) {
      const { database, schema, amqp } = options;
      const connection = connect({ database, schema, amqp, logger: this.logger });
      this.store = connection.store;
      this.bus = connection.bus;
      this.where = connection.description;
    } else {
      this.store = options.store;
      this.bus = options.bus ?? new LocalBus();
      this.where = `a ${options.store.capabilities.driver} store of the caller's`;
    }
    this.nodeId = `node-${randomUUID().slice(0, 8)}`;
    this.nodeName = this.options.nodeName ?? `${hostname()}:${process.pid}`;
    const log = logOf(this.logger);
    this.events = new NodeEvents((event, error) =>
      this.logger.error({ err: error, event }, "a node event listener threw"),
    );
    logNodeEvents(this.events, this.logger);
    this.#notifier = new Notifier(this.bus);
    this.#completions = new CompletionBuffer(this.store, log, () => this.#notifier.eventsWritten());
    this.#progress = new ProgressWriter(this.store, log, this.options.progressIntervalMs, () =>
      this.#notifier.eventsWritten(),
    );
    this.#feed = new EventFeed(this.store, this.bus, this.options.pollIntervalMs);
    const liveSecret = options.liveSecret ?? process.env.CONVEYOR_LIVE_SECRET ?? null;
    if (liveSecret !== null && liveSecret.length < 16)
      throw new ConfigError("liveSecret must be at least 16 characters");
    this.live = new Live({
      nodeId: this.nodeId,
      store: this.store,
      feed: new LiveFeed(this.store, this.#feed, {
        replayLimit: this.options.liveReplayLimit,
        onError: (error) => this.logger.error({ err: error }, "a live subscriber failed"),
      }),
      notifier: this.#notifier,
      ready: () => this.#ready(),
      secret: liveSecret,
    });
    this.#definitions.define(
      BULK_TYPE,
      bulkHandler(() => this.#bulkTarget()),
      { queue: BULK_QUEUE, maxAttempts: 1 },
    );
    this.#waiter = new TaskWaiter({
      store: this.store,
      events: this.#feed,
      stopping: this.#stopping.signal,
      feedSupervised: () => this.#state === "running",
      logger: this.logger,
    });
  }

  // ---- definitions -------------------------------------------------------------------------------------

  /**
   * Declare how tasks of `type` run. An inline handler is a function; a thread-isolated one is a module URL
   * (or `{ module, export }`) whose export is the handler. Define types before `start()`.
   */
  // biome-ignore lint/suspicious/noExplicitAny: data is whatever JSON was enqueued; a handler may type it without a cast
  define<TData = any>(
    type: string,
    handler: TaskHandler<TData> | ThreadHandlerRef | URL,
    options: TaskTypeOptions = {},
  ): this {
    if (this.#state !== "idle") throw new Error("define task types before start()");
    this.#definitions.define(type, handler as TaskHandler, options);
    return this;
  }

  // ---- tasks -------------------------------------------------------------------------------------------

  /** Add one task. With a `key` held by an active task, returns that task instead of adding another. */
  async enqueue(type: string, data?: Json, options: Omit<TaskInput, "type" | "data"> = {}): Promise<Task> {
    const [outcome] = await this.enqueueMany([{ ...options, type, data: data ?? null }]);
    return outcome!.task;
  }

  /**
   * Add tasks in one transaction: all or none. Each outcome says whether it was created or already there.
   * Ready tasks this node has idle slots for start in that same transaction, without a claim.
   */
  async enqueueMany(inputs: TaskInput[]): Promise<TaskInsertOutcome[]> {
    const now = new Date();
    const tasks = inputs.map((input) => normalizeTaskInput(input, (type) => this.#definitions.defaultsFor(type), now));
    await this.#ready();
    const pool = this.#state === "running" ? this.#services?.pool : undefined;
    const outcomes =
      pool !== undefined ? await pool.insert(tasks, now) : await this.store.taskInsertMany({ tasks, now });
    const created = outcomes.filter((o) => o.created).map((o) => o.task);
    if (created.length > 0) this.#notifier.tasksWritten(created);
    return outcomes;
  }

  async get(id: number): Promise<Task | null> {
    await this.#ready();
    return this.store.taskGet({ id });
  }

  /**
   * A page of tasks, newest first unless `order` is "asc". A filtered list reads a bounded stretch of ids per call
   * (runtime/task-listing.ts): its page may be short, even empty, while `nextCursor` is not null; the list is over
   * when `nextCursor` is null.
   */
  async list(query: TaskListQuery = {}): Promise<TaskPage> {
    await this.#ready();
    return listTasks(this.store, query);
  }

  /**
   * Stop a task wherever it is: a scheduled or queued task is cancelled at once; a running one is
   * cancelled in the store and its handler is signalled (and ended after its grace period). A task that
   * already finished is returned unchanged.
   */
  async cancel(id: number, reason = "cancelled by request"): Promise<Task> {
    await this.#ready();
    const outcome = await this.store.taskCancel({ id, reason, now: new Date() });
    if (outcome === null) throw new NotFoundError("task_not_found", `task ${id} does not exist`);
    if (outcome.cancelled) {
      this.#notifier.taskCancelled(id, { wasRunning: outcome.previousState === "running" });
      this.events.emit("task:cancelled", { task: outcome.task, previousState: outcome.previousState, reason });
    }
    return outcome.task;
  }

  /**
   * Run a failed or cancelled task again, from attempt 1 (a person's decision; a failed attempt's automatic
   * retries are the task's own, with backoff: docs/glossary.md).
   */
  async rerun(id: number): Promise<Task> {
    await this.#ready();
    const task = await this.store.taskRerun({ id, now: new Date() });
    if (task === null) throw new NotFoundError("task_not_found", `task ${id} does not exist`);
    this.#notifier.tasksWritten([task]);
    return task;
  }

  /** @deprecated The old name of rerun(). */
  retry(id: number): Promise<Task> {
    return this.rerun(id);
  }

  /**
   * Cancel, rerun or delete the tasks with these ids (at most 1000; delete takes finished tasks only); returns which
   * were done and which skipped, and why.
   */
  async bulk(action: BulkAction, ids: number[]): Promise<BulkOutcome> {
    checkAction(action);
    if (ids.length > MAX_BULK_IDS)
      throw new ValidationError(`at most ${MAX_BULK_IDS} ids: act on more through a filter`);
    await this.#ready();
    return applyToIds(this.#bulkTarget(), action, ids);
  }

  /**
   * Cancel, rerun or delete every task matching `filter`, in the background: a conveyor.bulk task whose progress says
   * how far it is and whose result says what it did.
   */
  async bulkMatching(action: BulkAction, filter: BulkFilter): Promise<Task> {
    checkAction(action);
    return this.enqueue(BULK_TYPE, { action, filter } as unknown as Json, { queue: BULK_QUEUE, maxAttempts: 1 });
  }

  #bulkTarget(): BulkTarget {
    return {
      cancel: (id, reason) => this.cancel(id, reason),
      rerun: (id) => this.rerun(id),
      deleteFinished: async (ids) => {
        const deleted = await this.store.taskDelete({ ids, now: new Date() });
        if (deleted.length > 0) this.#notifier.eventsWritten();
        return deleted;
      },
      list: (query) => this.list(query),
      queueCounts: () => this.store.queueStats(),
    };
  }

  /**
   * The task once it has finished, or as it is when `timeoutMs` runs out, `signal` aborts or this node
   * stops. Null for an unknown id. Waits on the event feed, never by polling the task.
   */
  async waitForFinish(id: number, timeoutMs: number, signal?: AbortSignal): Promise<Task | null> {
    await this.#ready();
    return this.#waiter.waitForFinish(id, timeoutMs, signal);
  }

  /**
   * The result of a task, once it completes. Rejects with a TaskOutcomeError when it fails or is cancelled
   * (code task_failed / task_cancelled), or when `timeoutMs` passes first (wait_timeout).
   */
  async result<T = Json>(id: number, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    await this.#ready();
    return this.#waiter.result<T>(id, options);
  }

  /**
   * Events of one task, oldest first: its transitions. Its progress reports are in the node-wide event log
   * (and the live stream), not here; the task itself holds the latest.
   */
  async taskEvents(id: number, options: { after?: number; limit?: number } = {}): Promise<TaskEvent[]> {
    await this.#ready();
    const events = await this.store.eventList({ after: options.after ?? 0, limit: options.limit ?? 100, taskId: id });
    return events.map(({ channel: _channel, ...event }) => event as TaskEvent);
  }

  // ---- the live stream ---------------------------------------------------------------------------------

  /**
   * Follow channels of the event log (docs/live-protocol.md): `onEvent` gets every matching event in offset order,
   * those after `since` first. `recovered` false: the gap could not be replayed whole; reload your state.
   */
  subscribe(
    channels: string[],
    options: { since?: LivePosition },
    onEvent: (event: LogEvent) => void,
  ): Promise<LiveSubscription> {
    return this.live.subscribe(channels, options, onEvent);
  }

  /** Appends `data` to an application channel: durable, replayable, delivered to its subscribers on every node. */
  publish(channel: string, data: Json): Promise<void> {
    return this.live.publish(channel, data);
  }

  // ---- queues and nodes --------------------------------------------------------------------------------

  async queues(): Promise<QueueStats[]> {
    await this.#ready();
    return this.store.queueStats();
  }

  /**
   * How many tasks of `queue` each node runs at once, cluster-wide (null: each node's own setting): this node applies
   * it at once, the others within a heartbeat, none of them needing a restart.
   */
  async setQueueConcurrency(queue: string, concurrency: number | null): Promise<void> {
    if (concurrency !== null && (!Number.isSafeInteger(concurrency) || concurrency < 0 || concurrency > 1000)) {
      throw new ValidationError("concurrency must be an integer from 0 to 1000, or null");
    }
    await this.#ready();
    await this.store.queueSetConcurrency({ queue, concurrency, now: new Date() });
    await this.#services?.queueSettings.apply();
    await appendNodesEvent(this.#clusterLogDeps(), "queue.configured", { queue, concurrency, node: this.nodeId });
  }

  /**
   * Task throughput and timings of the whole cluster over the last `windowSeconds`, per 5-second bucket: completed,
   * failed and retried attempts, and run and wait time percentiles (from every node's histograms, merged).
   */
  async stats(windowSeconds = 900): Promise<ClusterStats> {
    await this.#ready();
    return clusterStats(await this.store.statsList({ since: new Date(Date.now() - windowSeconds * 1000) }));
  }

  /**
   * Failure injection on this node, when it allows it (`allowFaultInjection`): crash one of its services, or fail
   * the next attempts of a task type that start here. Throws FaultInjectionDisabled otherwise.
   */
  injectFault(fault: Fault): void {
    if (!this.options.allowFaultInjection) {
      throw new ConveyorError(
        "fault_injection_disabled",
        "this node does not allow failure injection (allowFaultInjection)",
      );
    }
    if (fault.kind === "fail-next") {
      this.#faults.failNext(fault.type, fault.count);
      return;
    }
    const error = new InjectedFault(`a crash of ${fault.service} was injected`);
    const services = this.#services;
    const found =
      services !== null &&
      (services.services.crash(fault.service, error) || services.queues.crash(fault.service, error));
    if (!found) throw new ConveyorError("service_not_found", `no running service named ${fault.service} on this node`);
  }

  async pauseQueue(queue: string): Promise<void> {
    await this.#ready();
    await this.store.queueSetPaused({ queue, paused: true, now: new Date() });
    await appendNodesEvent(this.#clusterLogDeps(), "queue.paused", { queue, node: this.nodeId });
  }

  async resumeQueue(queue: string): Promise<void> {
    await this.#ready();
    await this.store.queueSetPaused({ queue, paused: false, now: new Date() });
    this.#notifier.queuesReady([queue], { logged: false });
    await appendNodesEvent(this.#clusterLogDeps(), "queue.resumed", { queue, node: this.nodeId });
  }

  async nodes(): Promise<NodeRecord[]> {
    await this.#ready();
    return this.store.nodeList();
  }

  /** The cluster as the store sees it: the leader, and every node with its heartbeat age and liveness. */
  async cluster(): Promise<ClusterView> {
    await this.#ready();
    const [lease, nodes] = await Promise.all([this.store.leaseGet({ name: LEADER_LEASE }), this.store.nodeList()]);
    const now = Date.now();
    const deadAfterMs = this.options.heartbeatIntervalMs * this.options.deadAfterBeats;
    const leader = lease !== null && lease.expiresAt.getTime() > now ? lease.node : null;
    return {
      leader,
      nodes: nodes.map((node) => {
        const heartbeatAgeMs = Math.max(0, now - node.heartbeatAt.getTime());
        return { ...node, heartbeatAgeMs, alive: heartbeatAgeMs < deadAfterMs, leader: node.id === leader };
      }),
    };
  }

  // ---- schedules ---------------------------------------------------------------------------------------

  /**
   * Create or replace the schedule `name`: on every tick of `spec.cron`, the leader enqueues one task of
   * `spec.type` with `spec.data`, once cluster-wide.
   */
  async schedule(name: string, spec: ScheduleSpec): Promise<ScheduleView> {
    const schedule = normalizeSchedule(name, spec);
    await this.#ready();
    return withNextRun(await this.store.scheduleUpsert({ schedule, now: new Date() }));
  }

  /** Delete a schedule; false when there was none. */
  async unschedule(name: string): Promise<boolean> {
    await this.#ready();
    return this.store.scheduleDelete({ name });
  }

  async schedules(): Promise<ScheduleView[]> {
    await this.#ready();
    return (await this.store.scheduleList()).map(withNextRun);
  }

  /** This node's services and their state: the supervision tree. */
  supervisionTree(): NodeTree {
    const services = this.#services;
    if (services === null) return { name: this.nodeName, state: this.#state, leader: false, children: [] };
    const children = [services.services.tree(), services.queues.tree()];
    const leaderTree = services.leader.tree();
    if (leaderTree !== null) children.splice(1, 0, leaderTree);
    return { name: this.nodeName, state: this.#state, leader: services.leader.isLeader, children };
  }

  /** Whether this node is healthy: running, its store answering, no service given up on. */
  async health(): Promise<{ ok: boolean; state: string; store: { ok: boolean; error?: string } }> {
    let store: { ok: boolean; error?: string } = { ok: true };
    try {
      await this.store.ping();
    } catch (error) {
      store = { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    const failed = this.supervisionTree().children.some((tree) => tree.state === "failed");
    return { ok: store.ok && !failed && this.#state === "running", state: this.#state, store };
  }

  get state(): string {
    return this.#state;
  }

  /**
   * Whether this node has fenced itself off: its heartbeat has not reached the store for the dead time minus
   * `fenceMarginMs`, so it claims nothing and has stopped its tasks until the store answers again (docs/cluster.md).
   */
  get fenced(): boolean {
    return this.#services?.fence?.fenced ?? false;
  }

  // ---- lifecycle ---------------------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.#state !== "idle") throw new Error(`cannot start a node that is ${this.#state}`);
    this.#state = "starting";
    await this.#ready();
    await this.#busStarted(true);
    const services = buildNodeServices({
      store: this.store,
      bus: this.bus,
      notifier: this.#notifier,
      events: this.events,
      options: this.options,
      definitions: this.#definitions,
      completions: this.#completions,
      progress: this.#progress,
      feed: this.#feed,
      faults: this.#faults,
      logger: this.logger,
      node: {
        id: this.nodeId,
        name: this.nodeName,
        host: hostname(),
        pid: process.pid,
        version: this.options.version,
        roles: ["worker"],
        startedAt: this.#startedAt,
      },
      info: () => this.#nodeInfo(),
    });
    this.#services = services;
    // The queues' cluster-wide settings before the first claim, so that no worker starts at the wrong concurrency.
    await services.queueSettings.apply();
    this.#stopClusterLog = writeClusterEvents({
      ...this.#clusterLogDeps(),
      events: this.events,
      nodeId: this.nodeId,
      isLeader: () => services.leader.isLeader,
      isStopping: () => this.#state === "stopping",
    });
    // The first heartbeat lands before any claim, so no rescuer can mistake this node's tasks for orphans.
    await services.heartbeat.first();
    this.#watchBus(services);
    // Other processes on a store that cannot ring us (SQLite): look when it changes, not at the next poll.
    const queues = services.pool.workers.map((worker) => worker.options.queue);
    this.#stopWatchingStore =
      this.store.watchForeignWrites?.(() => this.#notifier.foreignWrite(queues), FOREIGN_WRITE_CHECK_MS) ?? null;
    services.services.start();
    services.queues.start();
    this.#state = "running";
    this.logger.info(
      { node: this.nodeId, queues: services.pool.workers.map((w) => w.options.queue) },
      "conveyor node started",
    );
  }

  /**
   * Graceful shutdown: stop claiming; let running tasks finish for up to `shutdownGraceMs`; hand the rest
   * back to the queue at once (another node, or the next start, runs them) and signal their handlers;
   * write what is buffered; leave the cluster; close what this node opened.
   */
  async stop(): Promise<void> {
    if (this.#state === "stopped" || this.#state === "stopping") return;
    const wasRunning = this.#state === "running";
    this.#state = "stopping";
    this.#stopping.abort("stopped");
    const services = this.#services;
    if (wasRunning && services !== null) {
      this.#stopWatchingStore?.();
      await services.queues.stop();
      const unfinished = await services.pool.settle(Date.now() + this.options.shutdownGraceMs);
      if (unfinished.length > 0) {
        const ids = unfinished.map((execution) => execution.task.id);
        const now = new Date();
        if (
          await this.#unlessStoreUnavailable("hand back unfinished tasks", () =>
            this.store.taskRelease({ node: this.nodeId, ids, now }),
          )
        ) {
          // Other nodes take them at once, not at their next poll.
          this.#notifier.queuesReady(new Set(unfinished.map((execution) => execution.task.queue)), { logged: true });
          this.logger.info({ ids }, "handed unfinished tasks back to the queue");
        }
        for (const execution of unfinished) execution.stop("shutdown");
        await Promise.all(unfinished.map((execution) => execution.outcome));
      }
      await this.#unlessStoreUnavailable("write buffered outcomes", () => this.#completions.drain());
      await services.services.stop();
      services.fence?.close();
      // The log just found the store unavailable: leaving would wait out the same timeout, and the leader removes a
      // silent node at its dead time anyway.
      if ((await this.#stopClusterLog?.()) === false) {
        this.logger.warn("stopping: could not leave the cluster, the store is unavailable; the cluster recovers");
      } else {
        await this.#unlessStoreUnavailable("leave the cluster", () => this.store.nodeRemove({ id: this.nodeId }));
      }
    }
    if (this.#ownsBus) await this.bus.close();
    if (this.#ownsStore) await this.store.close();
    this.#state = "stopped";
  }

  // ---- internals ---------------------------------------------------------------------------------------

  /**
   * A step of a stop that needs the store. A stop goes on when the store is unavailable (a node stopped during an
   * outage must still exit): what the step would have written, the cluster recovers without it (the leader rescues
   * this node's tasks at its dead time; a completion not written runs its task again, at least once as always).
   */
  async #unlessStoreUnavailable(step: string, work: () => Promise<unknown>): Promise<boolean> {
    try {
      await work();
      return true;
    } catch (error) {
      if (!isStoreUnavailable(error)) throw error;
      this.logger.warn({ err: error }, `stopping: could not ${step}, the store is unavailable; the cluster recovers`);
      return false;
    }
  }

  /**
   * Before any operation: the store migrated, and the bus started, so that a node that only enqueues (never
   * started) still rings the others. Its bus failing to connect fails no operation: the others then find its
   * tasks at their next poll.
   */
  async #ready(): Promise<void> {
    this.#migrated ??= this.store.migrate();
    await this.#migrated;
    await this.#busStarted(false);
  }

  /** Starts the bus once; a start that failed is tried again next time. `strict`: its failure is thrown. */
  async #busStarted(strict: boolean): Promise<void> {
    this.#busStarting ??= this.bus.start();
    const starting = this.#busStarting;
    try {
      await starting;
    } catch (error) {
      if (this.#busStarting === starting) this.#busStarting = null;
      if (strict) throw error;
      this.logger.warn({ err: error }, "the bus did not connect: other nodes will find this node's tasks by polling");
    }
  }

  /**
   * The bus's connection as node events. Wake-ups sent while it was down are lost: after a reconnection every
   * queue looks for work at once.
   */
  #watchBus(services: NodeServices): void {
    if (this.bus.onReconnect === undefined) return;
    this.events.emit("bus:connected", { reconnect: false, downMs: 0 });
    this.bus.onReconnect(({ downMs }) => {
      this.#notifier.queuesReady(
        services.pool.workers.map((worker) => worker.options.queue),
        { logged: false },
      );
      this.events.emit("bus:connected", { reconnect: true, downMs });
    });
    this.bus.onDisconnect?.((error) => this.events.emit("bus:lost", { error }));
  }

  #clusterLogDeps() {
    return { store: this.store, notifier: this.#notifier, logger: logOf(this.logger) };
  }

  #nodeInfo(): Json {
    return { tree: this.supervisionTree() as unknown as Json, queues: this.#services?.pool.info() ?? [] };
  }
}
