/**
 * The engine (contract A.3, A.6): it owns the items, answers the workers over RabbitMQ and its own browsers over
 * the Phoenix channel.
 *
 * A change is written first to Conveyor's event log, as a message on the application channel `todo_events`
 * (`conveyor.publish`: one transaction, a dense offset, durable once it returns), then applied to the items table
 * (items.ts), whose projection row says up to which offset it reflects the log. Every write holds the table's lock
 * and first applies what the log has beyond that offset (the change of an engine that died between the two steps,
 * or of another engine on the same database), checks the action against the items as they are, publishes, and
 * applies its own change. So the log and the table never disagree for longer than a crash, the log's order is the
 * order in which changes were checked, and any number of engines on one PostgreSQL database stay consistent.
 *
 * Then, still under the lock, the change goes to the workers on the fanout exchange (the seed's Event JSON, with
 * its log position in headers) and, through each browser's Conveyor subscription to `todo_events`, to every
 * engine's browsers, in log order. A browser or a worker that was away says from which position it needs the
 * changes; Conveyor's log replays them (subscribe with `since`; or the `since` RPC for a worker), or, when the gap
 * is gone (another log, pruned), it gets the list as it is and the position it goes with.
 */
import { Conveyor, type Json, type LogEvent } from "../../src/index.ts";
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import {
  AmqpLink,
  BROADCASTS_EXCHANGE,
  BROADCASTS_ROUTING_KEY,
  declareBroadcasts,
  declareRequests,
  HEADER_EPOCH,
  HEADER_OFFSET,
  HEADER_PREVIOUS,
  type LinkLog,
  REQUESTS_QUEUE,
} from "./amqp.ts";
import { isPostgresUrl } from "./config.ts";
import { itemsFileFor, type ItemsTable, type ItemsTx, PostgresItems, SqliteItems } from "./items.ts";
import type { ChannelPeer, Payload, Reply, TopicHandler } from "./phoenix.ts";
import {
  type Action,
  eventFor,
  eventJson,
  isRefusal,
  type Item,
  newId,
  parseAction,
  parseEvent,
  type Refusal,
  refusal,
  type TodoEvent,
} from "./todo.ts";

/** The application channel of Conveyor's log that holds every change. */
export const CHANNEL = "todo_events";
/** The most log events a `since` answer looks through; beyond, the worker takes the whole list instead. */
export const MAX_REPLAY_EVENTS = 10_000;
/** Change ids are kept this long after their change, to answer a worker that sends one again. */
const CHANGE_MEMORY_MS = 10 * 60_000;
/** An idle engine reads the log this often (another engine's change it missed; the projection's position). */
const IDLE_CATCH_UP_MS = 30_000;
const CONFIRM_TIMEOUT_MS = 2000;
const LOG_PAGE = 1000;

export type Position = { epoch: string; offset: number };

/** One change as the log holds it, with where it is. */
export type LoggedEvent = { offset: number; previous: number; event: TodoEvent; change: string | null };

export type Outcome = { status: "ok"; event: TodoEvent; offset: number } | { status: "error"; refusal: Refusal };

export type EngineOptions = {
  /** A SQLite file path or a postgres:// URL. */
  database: string;
  /** PostgreSQL: Conveyor's schema, which also holds the todo tables. */
  schema: string;
  amqpUrl: string;
  log: LinkLog;
  /** A name for RabbitMQ's connection list. */
  name?: string;
};

export function parsePosition(value: unknown): Position | null {
  if (typeof value !== "object" || value === null) return null;
  const { epoch, offset } = value as { epoch?: unknown; offset?: unknown };
  if (typeof epoch !== "string" || epoch === "" || epoch.length > 100) return null;
  if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) return null;
  return { epoch, offset };
}

export class Engine {
  readonly conveyor: Conveyor;
  readonly items: ItemsTable;
  readonly topic: TopicHandler;
  readonly #options: EngineOptions;
  readonly #link: AmqpLink;
  #channel: ConfirmChannel | null = null;
  #epoch = "";
  /** Event messages from the requests queue, handled one after another in delivery order. */
  #requests: Promise<void> = Promise.resolve();
  #lastPrune = 0;
  #idle: NodeJS.Timeout | null = null;
  readonly #subscriptions = new Map<ChannelPeer, { close(): void } | null>();

  constructor(options: EngineOptions) {
    this.#options = options;
    const postgres = isPostgresUrl(options.database);
    this.conveyor = new Conveyor({
      database: options.database,
      ...(postgres ? { schema: options.schema } : {}),
      // The engine runs no tasks; its node is there for the log, the live stream and the cluster's view.
      concurrency: 0,
    });
    this.items = postgres
      ? new PostgresItems(options.database, options.schema)
      : new SqliteItems(itemsFileFor(options.database));
    this.#link = new AmqpLink({
      url: options.amqpUrl,
      name: options.name ?? `ztd-engine-${process.pid}`,
      log: options.log,
      setup: (connection) => this.#setup(connection),
      onDown: () => (this.#channel = null),
    });
    this.topic = this.#topicHandler();
  }

  get amqpUp(): boolean {
    return this.#link.up;
  }

  /** Resolves once the broker is reached (the engine serves its browsers without it meanwhile). */
  whenAmqpUp(): Promise<void> {
    return this.#link.whenUp();
  }

  async start(): Promise<void> {
    await this.conveyor.start();
    await this.items.migrate();
    this.#epoch = await this.conveyor.live.epoch();
    // Recovery: what an engine that died left in the log without applying it (and without sending it to the
    // workers) is applied and sent now.
    await this.#write(async () => null);
    this.#idle = setInterval(() => {
      this.#write(async () => null).catch((error: unknown) =>
        this.#options.log("warn", `reading the log failed: ${(error as Error).message}`),
      );
    }, IDLE_CATCH_UP_MS);
    this.#idle.unref();
    this.#link.start();
  }

  async stop(): Promise<void> {
    if (this.#idle !== null) clearInterval(this.#idle);
    for (const subscription of this.#subscriptions.values()) subscription?.close();
    this.#subscriptions.clear();
    await this.#link.close();
    // Writes in flight finish before the table closes.
    await this.#requests.catch(() => {});
    await this.items.close();
    await this.conveyor.stop();
  }

  // ---- the list ------------------------------------------------------------------------------------------

  /** The items and the log position they reflect: a page's props, an `all` answer. */
  async snapshot(): Promise<{ items: Item[]; position: Position }> {
    const { items, projection } = await this.items.snapshot();
    return { items, position: { epoch: projection.epoch ?? this.#epoch, offset: projection.scanned } };
  }

  /**
   * Applies an action: checked against the items as they are, then logged, applied and broadcast; or refused.
   * `change` names it, so that the same change sent twice (a worker that could not tell) is applied once.
   */
  async perform(action: Action, change: string = newId()): Promise<Outcome> {
    const outcome = await this.#write(async (tx) => {
      const known = await tx.changeOutcome(change);
      if (known !== null) return JSON.parse(known) as Outcome;
      const current = action.type === "update" ? await tx.get(action.data.id) : null;
      const event = eventFor(action, current);
      if (isRefusal(event)) return { status: "error", refusal: event } satisfies Outcome;
      await this.conveyor.publish(CHANNEL, { ...eventJson(event), change } as Json);
      return null;
    }, change);
    return outcome!;
  }

  /**
   * One write: under the table's lock, catch up with the log, run `work` (which may publish one change), catch up
   * again (which applies it), then send what was applied to the workers. Returns `work`'s answer, or the outcome
   * of change `change` once applied.
   */
  async #write(work: (tx: ItemsTx) => Promise<Outcome | null>, change?: string): Promise<Outcome | null> {
    return this.items.locked(async (tx) => {
      const applied = await this.#catchUp(tx);
      const answer = await work(tx);
      if (answer === null) applied.push(...(await this.#catchUp(tx)));
      const now = Date.now();
      if (now - this.#lastPrune > 60_000) {
        this.#lastPrune = now;
        await tx.pruneChanges(new Date(now - CHANGE_MEMORY_MS));
      }
      await this.#broadcast(applied);
      if (answer !== null || change === undefined) return answer;
      const mine = applied.find((logged) => logged.change === change);
      if (mine === undefined) {
        return { status: "error", refusal: refusal("internal_error", "the change was not found in the log") };
      }
      return { status: "ok", event: mine.event, offset: mine.offset };
    });
  }

  /** Applies the log's changes beyond the projection's position, in order; returns them. */
  async #catchUp(tx: ItemsTx): Promise<LoggedEvent[]> {
    const projection = await tx.projection();
    const start = { ...projection };
    if (projection.epoch !== this.#epoch) {
      // A log this table has not followed (a new table, or Conveyor's log made anew): read all it holds.
      const info = await this.conveyor.store.eventLogInfo();
      projection.epoch = info.epoch;
      projection.scanned = info.oldestOffset - 1;
      projection.applied = 0;
    }
    const applied: LoggedEvent[] = [];
    for (;;) {
      const page = await this.conveyor.store.eventList({ after: projection.scanned, limit: LOG_PAGE });
      for (const entry of page) {
        const logged = loggedEvent(entry, projection.applied);
        if (logged !== null) {
          await tx.apply(logged.event, entry.at);
          if (logged.change !== null) {
            const outcome: Outcome = { status: "ok", event: logged.event, offset: logged.offset };
            await tx.recordChange(logged.change, JSON.stringify(outcome), entry.at);
          }
          applied.push(logged);
          projection.applied = entry.offset;
        }
        projection.scanned = entry.offset;
      }
      if (page.length < LOG_PAGE) break;
    }
    if (
      projection.epoch !== start.epoch ||
      projection.scanned !== start.scanned ||
      projection.applied !== start.applied
    ) {
      await tx.setProjection(projection);
    }
    return applied;
  }

  /** To the workers, in log order, confirmed by the broker before the lock is let go (so engines keep the order). */
  async #broadcast(events: LoggedEvent[]): Promise<void> {
    const channel = this.#channel;
    if (events.length === 0 || channel === null) return;
    try {
      for (const { event, offset, previous } of events) {
        channel.publish(BROADCASTS_EXCHANGE, BROADCASTS_ROUTING_KEY, Buffer.from(JSON.stringify(eventJson(event))), {
          headers: { [HEADER_EPOCH]: this.#epoch, [HEADER_OFFSET]: offset, [HEADER_PREVIOUS]: previous },
        });
      }
      await withTimeout(channel.waitForConfirms(), CONFIRM_TIMEOUT_MS);
    } catch (error) {
      // The workers lost their connection too, or will see the gap at the next event: either way they ask.
      this.#options.log("warn", `broadcast to the workers failed: ${(error as Error).message}`);
    }
  }

  /** The changes after `since`, for a worker that was away; null when they cannot all be given. */
  async eventsSince(since: Position): Promise<{ events: LoggedEvent[]; offset: number } | null> {
    const info = await this.conveyor.store.eventLogInfo();
    if (since.epoch !== info.epoch || since.offset < info.oldestOffset - 1 || since.offset > info.lastOffset) {
      return null;
    }
    if (info.lastOffset - since.offset > MAX_REPLAY_EVENTS) return null;
    const events: LoggedEvent[] = [];
    let scanned = since.offset;
    let previous = since.offset;
    for (;;) {
      const page = await this.conveyor.store.eventList({ after: scanned, limit: LOG_PAGE });
      for (const entry of page) {
        const logged = loggedEvent(entry, previous);
        if (logged !== null) {
          events.push(logged);
          previous = entry.offset;
        }
        scanned = entry.offset;
      }
      if (page.length < LOG_PAGE) break;
    }
    return { events, offset: scanned };
  }

  // ---- RabbitMQ -----------------------------------------------------------------------------------------

  async #setup(connection: ChannelModel): Promise<void> {
    const channel = await connection.createConfirmChannel();
    const failed = (what: string) => () => this.#link.reset(`engine channel ${what}`);
    channel.on("error", failed("error"));
    channel.on("close", failed("closed"));
    await declareRequests(channel);
    await declareBroadcasts(channel);
    await channel.prefetch(64);
    this.#channel = channel;
    await channel.consume(REQUESTS_QUEUE, (message) => {
      if (message !== null) this.#onRequest(channel, message);
      else this.#link.reset("the broker cancelled the engine's consumer");
    });
  }

  #onRequest(channel: Channel, message: ConsumeMessage): void {
    const { type, replyTo, correlationId, messageId } = message.properties;
    const ack = () => {
      try {
        channel.ack(message);
      } catch {
        // The channel is gone; the broker gives the message to another consumer (or to us again).
      }
    };
    if (type === "rpc") {
      // Answered at once, beside the events (the seed spawned a process per request).
      void this.#answerRpc(channel, message).finally(ack);
      return;
    }
    if (type !== "event") {
      this.#options.log("warn", `Unknown Message Type ${JSON.stringify(type ?? null)}: dropped`);
      ack();
      return;
    }
    this.#requests = this.#requests.then(async () => {
      const reply = (body: Json) => {
        if (typeof replyTo !== "string" || replyTo === "") return;
        try {
          channel.publish("", replyTo, Buffer.from(JSON.stringify(body)), {
            ...(typeof correlationId === "string" ? { correlationId } : {}),
            contentType: "application/json",
          });
        } catch {
          // The channel closed: the worker sends the change again and gets the recorded answer.
        }
      };
      let decoded: unknown;
      try {
        decoded = JSON.parse(message.content.toString("utf8"));
      } catch {
        decoded = undefined;
      }
      const { type: eventType, data } = (typeof decoded === "object" && decoded !== null ? decoded : {}) as {
        type?: unknown;
        data?: unknown;
      };
      const action = parseAction(eventType, data);
      if (isRefusal(action)) {
        this.#options.log("warn", `dropped an event that is not one: ${action.message}`);
        reply({ status: "error", reason: action.reason, message: action.message });
        return ack();
      }
      try {
        const change = typeof messageId === "string" && messageId !== "" ? messageId : undefined;
        const outcome = await this.perform(action, change);
        reply(
          outcome.status === "ok"
            ? { status: "ok", event: eventJson(outcome.event) as unknown as Json, offset: outcome.offset }
            : { status: "error", reason: outcome.refusal.reason, message: outcome.refusal.message },
        );
      } catch (error) {
        this.#options.log("error", `an event from a worker failed: ${(error as Error).message}`);
        reply({ status: "error", reason: "internal_error", message: "the engine could not apply it" });
      }
      ack();
    });
  }

  async #answerRpc(channel: Channel, message: ConsumeMessage): Promise<void> {
    const { replyTo, correlationId } = message.properties;
    const command = message.content.toString("utf8");
    const send = (body: string, headers: Record<string, string | number> = {}) => {
      if (typeof replyTo !== "string" || replyTo === "") return;
      channel.publish("", replyTo, Buffer.from(body), {
        ...(correlationId === undefined ? {} : { correlationId }),
        headers,
      });
    };
    try {
      if (command === "all") {
        const { items, position } = await this.snapshot();
        send(JSON.stringify(items), { [HEADER_EPOCH]: position.epoch, [HEADER_OFFSET]: position.offset });
        return;
      }
      const since = /^since ([0-9A-Za-z_-]{1,100}) (\d{1,15})$/.exec(command);
      if (since !== null) {
        const found = await this.eventsSince({ epoch: since[1]!, offset: Number(since[2]) });
        const body =
          found === null
            ? { recovered: false }
            : {
                recovered: true,
                offset: found.offset,
                events: found.events.map(({ offset, event }) => ({ offset, ...eventJson(event) })),
              };
        send(JSON.stringify(body), { [HEADER_EPOCH]: this.#epoch });
        return;
      }
      // As the seed: an unknown command gets no answer (its caller times out).
      this.#options.log("warn", `unknown RPC command ${JSON.stringify(command.slice(0, 100))}: no answer`);
    } catch (error) {
      this.#options.log("error", `an RPC failed: ${(error as Error).message}`);
    }
  }

  // ---- the Phoenix channel ------------------------------------------------------------------------------

  #topicHandler(): TopicHandler {
    return {
      join: (peer, payload) => this.#join(peer, payload),
      handle: async (_peer, event, payload) => {
        const data = typeof payload === "object" && payload !== null ? (payload as { data?: unknown }).data : undefined;
        const action = parseAction(event, data);
        if (isRefusal(action)) return errorReply(action);
        const outcome = await this.perform(action);
        return outcome.status === "ok"
          ? { status: "ok", response: eventJson(outcome.event) }
          : errorReply(outcome.refusal);
      },
      leave: (peer) => {
        this.#subscriptions.get(peer)?.close();
        this.#subscriptions.delete(peer);
      },
    };
  }

  /**
   * A join with no `since` (the seed's client) gets `event` frames from now on. A join with `since` (a position,
   * or null: Conveyor's page) gets `change` frames with offsets, after the gap since that position; or, when the
   * gap cannot be replayed, the list and its position in the reply, then the changes after it.
   */
  async #join(peer: ChannelPeer, payload: Payload): Promise<Reply> {
    this.#subscriptions.set(peer, null);
    const keep = (subscription: { close(): void }) => {
      // The client may have left while this join waited.
      if (this.#subscriptions.has(peer)) this.#subscriptions.set(peer, subscription);
      else subscription.close();
    };
    const positioned = typeof payload === "object" && payload !== null && "since" in payload;
    if (!positioned) {
      keep(
        await this.conveyor.subscribe([CHANNEL], {}, (entry) => {
          const logged = loggedEvent(entry, 0);
          if (logged !== null) peer.broadcast("event", eventJson(logged.event));
        }),
      );
      return { status: "ok", response: {} };
    }
    const onChange = (entry: LogEvent) => {
      const logged = loggedEvent(entry, 0);
      if (logged !== null) peer.push("change", { offset: logged.offset, ...eventJson(logged.event) });
    };
    const since = parsePosition((payload as { since: unknown }).since);
    if (since !== null) {
      const subscription = await this.conveyor.subscribe([CHANNEL], { since }, onChange);
      if (subscription.recovered) {
        keep(subscription);
        return { status: "ok", response: { resumed: true } };
      }
      subscription.close();
    }
    for (let attempt = 0; ; attempt++) {
      const { items, position } = await this.snapshot();
      const subscription = await this.conveyor.subscribe([CHANNEL], { since: position }, onChange);
      if (subscription.recovered) {
        keep(subscription);
        return { status: "ok", response: { resumed: false, items, position } };
      }
      subscription.close();
      // The projection's position fell out of the log (an idle table, a pruned log): read the log up to now.
      if (attempt > 0) return { status: "error", response: { reason: "internal_error", message: "no position" } };
      await this.#write(async () => null);
    }
  }
}

/** A todo event of the log, or null for anything else the log holds. */
function loggedEvent(entry: LogEvent, previous: number): LoggedEvent | null {
  if (entry.channel !== CHANNEL || entry.type !== "message") return null;
  const event = parseEvent(entry.data);
  if (event === null) return null;
  const change = (entry.data as { change?: unknown }).change;
  return { offset: entry.offset, previous, event, change: typeof change === "string" ? change : null };
}

function errorReply(refusal: Refusal): Reply {
  return { status: "error", response: { reason: refusal.reason, message: refusal.message } };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
