/**
 * Dispatch: Postoffice's model on Conveyor (docs/dispatch.md). Messages sent to a topic are delivered to each of its
 * publishers (a webhook, or an AMQP exchange), every delivery carried by Conveyor tasks of type `dispatch.deliver`,
 * retried on a schedule, signed, guarded against SSRF, and recorded attempt by attempt.
 *
 *   const dispatch = new Dispatch(conveyor);       // before conveyor.start(): it defines its task types
 *   await conveyor.start();
 *   await dispatch.start();                        // the retry timer, and the recovery schedule
 *   await dispatch.createTopic({ name: "orders", originHost: "http://origin/" });
 *   await dispatch.createPublisher({ topic: "orders", target: "https://hooks.example/orders", type: "http", active: true });
 *   await dispatch.send("orders", [{ payload: { id: 1 } }]);
 *
 * This file holds the class: its parts, its lifecycle, topics and publishers. Messages and deliveries are in
 * messages.ts and deliveries.ts, as functions of the same parts.
 */
import type { Json } from "../core/task.ts";
import type { Conveyor } from "../runtime/conveyor.ts";
import { Notifier } from "../runtime/notifier.ts";
import { Supervisor, type SupervisorTree } from "../runtime/supervisor.ts";
import type { AttemptRecord, DeliveryTaskTemplate, Publisher, Topic } from "../store/dispatch-store.ts";
import { AmqpSender } from "./amqp-sender.ts";
import { Batcher } from "./batcher.ts";
import { systemClock } from "./clock.ts";
import { deliverHandler, type DeliveryTaskData, DispatchEvents } from "./deliver.ts";
import * as deliveries from "./deliveries.ts";
import { HttpSender } from "./http-sender.ts";
import * as messages from "./messages.ts";
import { type DispatchOptions, type ResolvedDispatchOptions, resolveDispatchOptions } from "./options.ts";
import { PublisherSlots } from "./publisher-slots.ts";
import * as publishers from "./publishers.ts";
import { DELIVER_TASK, type DispatchParts, RECOVER_TASK } from "./parts.ts";
import { RetryTimer } from "./retry-timer.ts";

export { DELIVER_TASK, type DispatchParts, RECOVER_TASK, RECOVERY_SCHEDULE } from "./parts.ts";

const attached = new WeakMap<Conveyor, Dispatch>();

export class Dispatch {
  readonly conveyor: Conveyor;
  readonly options: ResolvedDispatchOptions;
  /** What happened to deliveries on this node: attempts recorded, deliveries settled without one. */
  readonly events = new DispatchEvents();
  readonly parts: DispatchParts;
  readonly #amqp: AmqpSender;
  readonly #supervisor: Supervisor;
  readonly #delivers: boolean;
  #migrated: Promise<unknown> | null = null;

  /** The Dispatch made for `conveyor`, or one that only serves the API (its node sends no deliveries). */
  static of(conveyor: Conveyor): Dispatch {
    return attached.get(conveyor) ?? new Dispatch(conveyor, { deliver: false });
  }

  constructor(conveyor: Conveyor, options: DispatchOptions = {}) {
    this.conveyor = conveyor;
    this.options = resolveDispatchOptions(options);
    this.#delivers = options.deliver ?? true;
    const clock = options.clock ?? systemClock;
    const random = options.random ?? Math.random;
    const notifier = new Notifier(conveyor.bus);
    const task: DeliveryTaskTemplate = {
      queue: this.options.queue,
      type: DELIVER_TASK,
      priority: 0,
      maxAttempts: 5,
      timeoutMs: null,
      backoffMs: null,
    };
    const timer = new RetryTimer({
      store: conveyor.store,
      bus: conveyor.bus,
      notifier,
      clock,
      task,
      pollIntervalMs: options.pollIntervalMs ?? conveyor.options.pollIntervalMs,
    });
    const http = new HttpSender({
      policy: { allow: this.options.allow },
      resolve: options.resolve,
      interceptLookup: options.interceptLookup,
    });
    this.#amqp = new AmqpSender(this.options.amqpUrl);
    this.parts = {
      conveyor,
      options: this.options,
      clock,
      random,
      notifier,
      timer,
      http,
      task,
      ready: async () => {
        this.#migrated ??= conveyor.store.migrate();
        await this.#migrated;
      },
    };
    this.#supervisor = new Supervisor({ name: "dispatch", maxRestarts: 20, periodMs: 60_000 }, [timer]);
    if (this.#delivers) this.#define();
    attached.set(conveyor, this);
  }

  #define(): void {
    const { conveyor, options } = this;
    const dispatch = conveyor.store.dispatch;
    const handler = deliverHandler({
      store: conveyor.store,
      work: new Batcher(async (ids: number[]) => {
        const found = new Map((await dispatch.deliveryWorkMany({ ids })).map((w) => [w.delivery.id, w]));
        return ids.map((id) => found.get(id) ?? null);
      }),
      // Attempts recorded together share the clock's reading of the moment they are written.
      records: new Batcher((records: AttemptRecord[]) =>
        dispatch.deliveryRecordMany({ records, now: this.parts.clock.now() }),
      ),
      clock: this.parts.clock,
      random: this.parts.random,
      http: this.parts.http,
      amqp: this.#amqp,
      slots: new PublisherSlots(),
      events: this.events,
      scheduled: (at) => this.#scheduled(at),
      autoDisableAfterMs: options.autoDisableAfterMs,
    });
    conveyor.define<DeliveryTaskData>(DELIVER_TASK, handler, { queue: options.queue, maxAttempts: 5 });
    conveyor.define(RECOVER_TASK, () => this.recover(), { queue: options.queue, maxAttempts: 1 });
  }

  /** A delivery is due at `at`: this node's timer, and the other nodes' through the bus, look then. */
  #scheduled(at: Date): void {
    this.parts.timer.due(at);
    this.conveyor.bus.publish("scheduled", { at: at.getTime() });
  }

  // ---- lifecycle ---------------------------------------------------------------------------------------

  /** Starts the retry timer, and keeps the recovery schedule in step with the topics. */
  async start(): Promise<void> {
    await this.parts.ready();
    if (this.#delivers) this.#supervisor.start();
    await publishers.syncRecoverySchedule(this.parts);
  }

  async stop(): Promise<void> {
    await this.#supervisor.stop();
    this.parts.http.close();
    await this.#amqp.close();
  }

  tree(): SupervisorTree {
    return this.#supervisor.tree();
  }

  // ---- topics and publishers ---------------------------------------------------------------------------

  createTopic(
    input: { name: string; originHost: string; recoveryEnabled?: boolean } | Record<string, unknown>,
  ): Promise<Topic> {
    return publishers.createTopic(this.parts, input);
  }

  topics(): Promise<Topic[]> {
    return publishers.listTopics(this.parts);
  }

  /** A topic by id or name; throws NotFoundError topic_not_found. */
  topic(idOrName: number | string): Promise<Topic> {
    return publishers.getTopic(this.parts, idOrName);
  }

  updateTopic(id: number, changes: { originHost?: string; recoveryEnabled?: boolean }): Promise<Topic> {
    return publishers.updateTopic(this.parts, id, changes);
  }

  /** Creates a publisher; `topic` is the topic's name. Returns it, with the secret it was given if one was made. */
  createPublisher(input: Record<string, unknown>): Promise<Publisher> {
    return publishers.createPublisher(this.parts, input);
  }

  publishers(filter: { topic?: string | number; includeDeleted?: boolean } = {}): Promise<Publisher[]> {
    return publishers.listPublishers(this.parts, filter);
  }

  publisher(id: number): Promise<Publisher> {
    return publishers.getPublisher(this.parts, id);
  }

  /** Changes a publisher (enable, disable, retarget, timeouts, retry policy...); enabling it sends what it held. */
  updatePublisher(id: number, changes: Record<string, unknown>): Promise<Publisher> {
    return publishers.updatePublisher(this.parts, id, changes);
  }

  /** Soft-deletes a publisher: its waiting deliveries are discarded. Null when unknown. */
  deletePublisher(id: number): Promise<Publisher | null> {
    return publishers.deletePublisher(this.parts, id);
  }

  /** Signs with a new secret (made when not given); the old one signs beside it for a day. */
  rotateSecret(id: number, secret?: string): Promise<{ publisher: Publisher; secret: string }> {
    return publishers.rotateSecret(this.parts, id, secret);
  }

  // ---- messages and deliveries (messages.ts, deliveries.ts) --------------------------------------------

  send(
    topic: string,
    inputs: { payload: Json; attributes?: { [key: string]: Json } }[],
    options: messages.SendOptions = {},
  ): Promise<messages.SendOutcome> {
    return messages.send(this.parts, topic, inputs, options);
  }

  searchMessages(query: messages.MessageQuery): Promise<messages.MessagePage> {
    return messages.search(this.parts, query);
  }

  message(id: number): Promise<messages.MessageDetail> {
    return messages.detail(this.parts, id);
  }

  delivery(id: number): Promise<deliveries.DeliveryDetail> {
    return deliveries.detail(this.parts, id);
  }

  deliveries(query: deliveries.DeliveryQuery): Promise<deliveries.DeliveryPage> {
    return deliveries.list(this.parts, query);
  }

  /** Replays a failed or cancelled delivery: sent again, from the start of its retry schedule (a person's action). */
  replayDelivery(id: number): Promise<deliveries.DeliveryDetail> {
    return deliveries.replayOne(this.parts, id);
  }

  /** Sends a retrying (scheduled) delivery now instead of at its next attempt; no attempt is spent. */
  retryDeliveryNow(id: number): Promise<deliveries.DeliveryDetail> {
    return deliveries.retryNow(this.parts, id);
  }

  /** Deliveries per state but delivered (each counted up to 10,000), overall and, when asked, per publisher. */
  deliveryCounts(options: { byPublisher?: boolean } = {}): Promise<deliveries.CountsView> {
    return deliveries.counts(this.parts, { byPublisher: options.byPublisher ?? false });
  }

  cancelDelivery(id: number): Promise<deliveries.DeliveryDetail> {
    return deliveries.cancel(this.parts, id);
  }

  /** Sends again every failed or cancelled delivery of a publisher received in [from, to) (at most 10,000). */
  replay(publisherId: number, window: { from: Date; to: Date }): Promise<{ replayed: number }> {
    return deliveries.replay(this.parts, publisherId, window);
  }

  /** Polls every origin host of topics with recovery enabled, once (what the recovery schedule runs). */
  recover(): Promise<Json> {
    return messages.recover(this.parts);
  }
}
