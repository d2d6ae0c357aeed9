/**
 * The worker (contract A.1, A.6): no database. Its browsers' actions go to the engine as Event messages on the
 * requests exchange; the engine's broadcasts come back on the fanout exchange and go to its browsers; a page's
 * list is an `all` RPC.
 *
 * What the seed lacked, and this worker adds:
 * - One connection for everything, RPCs included (the seed opened one per RPC and never closed it), set up again
 *   after any loss.
 * - A copy of the list, kept by the broadcasts and checked by their log positions (headers): a broadcast whose
 *   `previous` it has not seen means it missed one (it was disconnected, the broker restarted), and it asks the
 *   engine for the changes since its position (the `since` RPC, from Conveyor's log), or for the whole list when
 *   those are gone. A browser that comes back with its position gets what it missed from the last changes kept
 *   here, or the list.
 * - Every push is answered. A change is sent with a `message_id` and a `reply_to`; the engine applies it once
 *   (however often it arrives) and answers; only then does the browser get `ok`, so a change acknowledged to a user
 *   is in the engine's database. Unanswered, it is sent again every 10 s and after every reconnection (the broker
 *   may have lost the non-durable queue); after 60 s it is refused (`engine_unavailable`), and its copies expire
 *   from the queue (per-message TTL) so that it cannot be applied later.
 * - Against an original engine (an `all` answer without positions), it falls back to the seed's behaviour: events
 *   relayed as they come, a change acknowledged once the broker confirms it, and the whole list again after a
 *   reconnection, told to the browsers as the insert, update and delete events that turn their list into it.
 */
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import {
  AmqpLink,
  BROADCASTS_EXCHANGE,
  declareBroadcasts,
  declareRequests,
  HEADER_EPOCH,
  HEADER_OFFSET,
  HEADER_PREVIOUS,
  type LinkLog,
  numberHeader,
  REQUESTS_EXCHANGE,
  REQUESTS_QUEUE,
  RPC_TIMEOUT_MS,
  stringHeader,
} from "./amqp.ts";
import { parsePosition, type Position } from "./engine.ts";
import type { ChannelPeer, Payload, Reply, TopicHandler } from "./phoenix.ts";
import {
  type Action,
  applyEvent,
  eventJson,
  isRefusal,
  type Item,
  newId,
  parseAction,
  parseEvent,
  type TodoEvent,
} from "./todo.ts";

/** How long a change may wait for the engine before it is refused. */
export const CHANGE_DEADLINE_MS = 60_000;
/** An unanswered change is sent again this often (the engine applies it once). */
export const RESEND_MS = 10_000;
/** Changes kept for browsers that come back. */
const RECENT_CHANGES = 2000;

export class RpcTimeout extends Error {
  override name = "RpcTimeout";
}

type Broadcast = { event: TodoEvent; epoch: string | null; offset: number | null; previous: number | null };

type Pending = {
  id: string;
  action: Action;
  deadline: number;
  resolve: (reply: Reply) => void;
  expiry: NodeJS.Timeout;
  resend: NodeJS.Timeout | null;
  sent: boolean;
};

export type WorkerOptions = {
  amqpUrl: string;
  log: LinkLog;
  name?: string;
  changeDeadlineMs?: number;
  resendMs?: number;
};

let nextUnique = Math.floor(Math.random() * 1e9);

export class Worker {
  readonly topic: TopicHandler;
  readonly #options: WorkerOptions;
  readonly #link: AmqpLink;
  #channel: ConfirmChannel | null = null;
  #replyQueue: string | null = null;
  readonly #waiting = new Map<string, (message: ConsumeMessage) => void>();
  // The copy of the list.
  #items = new Map<string, Item>();
  #position: Position | null = null;
  /** The engine speaks only the seed's protocol (its `all` answer had no position). */
  #legacy = false;
  #loaded = false;
  #loadWaiters: (() => void)[] = [];
  /** The last changes, for browsers that come back; complete after offset `#recentFrom`. */
  #recent: { offset: number; event: TodoEvent }[] = [];
  #recentFrom = 0;
  #held: Broadcast[] = [];
  /** Broadcasts are held (not applied) while an answer from the engine is awaited. */
  #holding = false;
  #syncing: Promise<void> | null = null;
  #needSync = false;
  readonly #plain = new Set<ChannelPeer>();
  readonly #positioned = new Set<ChannelPeer>();
  readonly #outbox: Pending[] = [];
  #stopped = false;

  constructor(options: WorkerOptions) {
    this.#options = options;
    this.#link = new AmqpLink({
      url: options.amqpUrl,
      name: options.name ?? `ztd-worker-${process.pid}`,
      log: options.log,
      setup: (connection) => this.#setup(connection),
      onUp: () => {
        this.#requestSync();
        this.#pump();
      },
      onDown: () => {
        this.#channel = null;
        this.#replyQueue = null;
        for (const pending of this.#outbox) pending.sent = false;
      },
    });
    this.topic = this.#topicHandler();
  }

  start(): void {
    this.#link.start();
  }

  whenUp(): Promise<void> {
    return this.#link.whenUp();
  }

  /** Whether the copy of the list is loaded (for tests and the page's status). */
  get loaded(): boolean {
    return this.#loaded;
  }

  get position(): Position | null {
    return this.#position === null ? null : { ...this.#position };
  }

  /** The copy of the list (for tests). */
  get items(): Item[] {
    return [...this.#items.values()].map((item) => ({ ...item }));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const pending of [...this.#outbox]) this.#settle(pending, unavailable("the worker is stopping"));
    await this.#link.close();
  }

  // ---- RPC ----------------------------------------------------------------------------------------------

  /** The seed's blocking RPC: `command` to the engine, the answer within 2 s or RpcTimeout. */
  async rpc(command: string, timeoutMs = RPC_TIMEOUT_MS): Promise<ConsumeMessage> {
    const started = Date.now();
    if (!this.#link.up) {
      await Promise.race([this.#link.whenUp(), sleep(timeoutMs)]);
    }
    const channel = this.#channel;
    const replyTo = this.#replyQueue;
    if (channel === null || replyTo === null) throw new RpcTimeout("RPC Call Timed out (the broker is not reachable)");
    const correlationId = Buffer.from(String(nextUnique++)).toString("base64");
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.#waiting.delete(correlationId);
          reject(new RpcTimeout("RPC Call Timed out"));
        },
        Math.max(1, timeoutMs - (Date.now() - started)),
      );
      timer.unref();
      this.#waiting.set(correlationId, (message) => {
        clearTimeout(timer);
        resolve(message);
      });
      try {
        channel.publish(REQUESTS_EXCHANGE, REQUESTS_QUEUE, Buffer.from(command), {
          type: "rpc",
          replyTo,
          correlationId,
        });
      } catch {
        // The channel just closed: the timer answers.
      }
    });
  }

  /** The `all` RPC: the engine's list, and its log position (null from an original engine). */
  async all(): Promise<{ items: Item[]; position: Position | null }> {
    const message = await this.rpc("all");
    const body = JSON.parse(message.content.toString("utf8")) as unknown;
    if (!Array.isArray(body)) throw new Error("the engine's `all` answer is not a list");
    const items = body.flatMap((value): Item[] => {
      const event = parseEvent({ type: "insert", data: value });
      return event === null || event.type !== "insert" ? [] : [event.data];
    });
    const epoch = stringHeader(message.properties.headers, HEADER_EPOCH);
    const offset = numberHeader(message.properties.headers, HEADER_OFFSET);
    return { items, position: epoch === null || offset === null ? null : { epoch, offset } };
  }

  // ---- RabbitMQ -----------------------------------------------------------------------------------------

  async #setup(connection: ChannelModel): Promise<void> {
    const channel = await connection.createConfirmChannel();
    const failed = (what: string) => () => this.#link.reset(`worker channel ${what}`);
    channel.on("error", failed("error"));
    channel.on("close", failed("closed"));
    await declareRequests(channel);
    await declareBroadcasts(channel);
    // As the seed's worker Listener: an exclusive server-named queue on the fanout, consumed without acks.
    const { queue } = await channel.assertQueue("", { exclusive: true, durable: false });
    await channel.bindQueue(queue, BROADCASTS_EXCHANGE, "");
    await channel.consume(queue, (message) => message !== null && this.#onBroadcast(message), { noAck: true });
    // One reply queue for the connection's RPCs and the engine's answers to changes.
    const replies = await channel.assertQueue("", { exclusive: true, durable: false });
    await channel.consume(replies.queue, (message) => message !== null && this.#onReply(message), { noAck: true });
    this.#channel = channel;
    this.#replyQueue = replies.queue;
  }

  #onReply(message: ConsumeMessage): void {
    const id = message.properties.correlationId;
    if (typeof id !== "string") return;
    const waiter = this.#waiting.get(id);
    this.#waiting.delete(id);
    waiter?.(message);
  }

  #onBroadcast(message: ConsumeMessage): void {
    let event: TodoEvent | null = null;
    try {
      event = parseEvent(JSON.parse(message.content.toString("utf8")));
    } catch {
      event = null;
    }
    if (event === null) {
      this.#options.log("warn", "dropped a broadcast that is not an event");
      return;
    }
    const headers = message.properties.headers;
    this.#accept({
      event,
      epoch: stringHeader(headers, HEADER_EPOCH),
      offset: numberHeader(headers, HEADER_OFFSET),
      previous: numberHeader(headers, HEADER_PREVIOUS),
    });
  }

  /** A broadcast: applied and relayed if it is the next one; dropped if seen; held while missing ones are fetched. */
  #accept(broadcast: Broadcast): void {
    const { event, epoch, offset, previous } = broadcast;
    if (!this.#loaded || this.#holding) return void this.#held.push(broadcast);
    if (offset === null || epoch === null) {
      // An original engine's broadcast: no position to check.
      applyEvent(this.#items, event);
      this.#relay(event, null);
      return;
    }
    const position = this.#position;
    if (position === null || position.epoch !== epoch || (previous !== null && previous > position.offset)) {
      this.#held.push(broadcast);
      this.#requestSync();
      return;
    }
    if (offset <= position.offset) return;
    this.#applyLogged(offset, event);
  }

  #applyLogged(offset: number, event: TodoEvent): void {
    applyEvent(this.#items, event);
    if (this.#position !== null) this.#position.offset = offset;
    this.#recent.push({ offset, event });
    if (this.#recent.length > RECENT_CHANGES) this.#recentFrom = this.#recent.shift()!.offset;
    this.#relay(event, offset);
  }

  #relay(event: TodoEvent, offset: number | null): void {
    const json = eventJson(event);
    for (const peer of this.#plain) peer.broadcast("event", json);
    for (const peer of this.#positioned) peer.push("change", { offset, ...json });
  }

  // ---- catching up --------------------------------------------------------------------------------------

  #requestSync(): void {
    this.#needSync = true;
    this.#syncing ??= this.#sync().finally(() => {
      this.#syncing = null;
      this.#holding = false;
      // Broadcasts that came after the loop's last look (a gap among them starts it again).
      this.#drainHeld();
    });
  }

  /** Asks the engine until the copy is whole again; broadcasts are held meanwhile, then looked at in order. */
  async #sync(): Promise<void> {
    let failures = 0;
    while (this.#needSync && !this.#stopped && this.#link.up) {
      this.#needSync = false;
      this.#holding = true;
      try {
        const position = this.#position;
        if (this.#loaded && !this.#legacy && position !== null) await this.#catchUp(position);
        else await this.#load();
        failures = 0;
      } catch (error) {
        this.#needSync = true;
        failures++;
        if (failures === 1)
          this.#options.log("warn", `cannot reach the engine (${(error as Error).message}); retrying`);
        await sleep(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      }
      this.#holding = false;
      this.#drainHeld();
    }
  }

  /** The changes since `position`, from the engine's log; the whole list when they are gone. */
  async #catchUp(position: Position): Promise<void> {
    const message = await this.rpc(`since ${position.epoch} ${position.offset}`);
    const body = JSON.parse(message.content.toString("utf8")) as {
      recovered?: unknown;
      offset?: unknown;
      events?: unknown;
    };
    const epoch = stringHeader(message.properties.headers, HEADER_EPOCH);
    if (body.recovered !== true || epoch !== position.epoch || !Array.isArray(body.events)) return this.#load();
    for (const value of body.events as unknown[]) {
      const offset = (value as { offset?: unknown }).offset;
      const event = parseEvent(value);
      if (event !== null && typeof offset === "number" && offset > (this.#position?.offset ?? 0)) {
        this.#applyLogged(offset, event);
      }
    }
    if (typeof body.offset === "number" && this.#position !== null && body.offset > this.#position.offset) {
      this.#position.offset = body.offset;
    }
  }

  /** The whole list; browsers are told what changed (events for the seed's, a snapshot for ours). */
  async #load(): Promise<void> {
    const { items, position } = await this.all();
    const next = new Map(items.map((item) => [item.id, item]));
    if (this.#loaded) {
      for (const id of this.#items.keys()) {
        if (!next.has(id)) for (const peer of this.#plain) peer.broadcast("event", { type: "delete", data: { id } });
      }
      for (const item of next.values()) {
        const before = this.#items.get(item.id);
        const type =
          before === undefined ? "insert" : before.title !== item.title || before.done !== item.done ? "update" : null;
        if (type !== null) for (const peer of this.#plain) peer.broadcast("event", { type, data: item });
      }
    }
    this.#items = next;
    this.#position = position;
    this.#legacy = position === null;
    this.#recent = [];
    this.#recentFrom = position?.offset ?? 0;
    this.#loaded = true;
    for (const peer of this.#positioned) peer.push("snapshot", { items, position });
    for (const resolve of this.#loadWaiters.splice(0)) resolve();
    this.#pump();
  }

  /** Broadcasts held while catching up, in the order they came. */
  #drainHeld(): void {
    if (!this.#loaded || this.#holding) return;
    const held = this.#held;
    this.#held = [];
    for (const broadcast of held) this.#accept(broadcast);
  }

  // ---- changes from this worker's browsers --------------------------------------------------------------

  /** Sends a checked action to the engine; resolves with the engine's answer (or a refusal at the deadline). */
  dispatch(action: Action): Promise<Reply> {
    const deadlineMs = this.#options.changeDeadlineMs ?? CHANGE_DEADLINE_MS;
    return new Promise((resolve) => {
      const pending: Pending = {
        id: newId(),
        action,
        deadline: Date.now() + deadlineMs,
        resolve,
        expiry: setTimeout(
          () => this.#settle(pending, unavailable(`the engine did not answer within ${deadlineMs / 1000} s`)),
          deadlineMs,
        ),
        resend: null,
        sent: false,
      };
      pending.expiry.unref();
      this.#outbox.push(pending);
      this.#pump();
    });
  }

  /** Sends the oldest unanswered change (one at a time, so that a worker's changes apply in the order made). */
  #pump(): void {
    const head = this.#outbox[0];
    const channel = this.#channel;
    const replyTo = this.#replyQueue;
    if (head === undefined || head.sent || channel === null || replyTo === null || !this.#loaded) return;
    const remaining = head.deadline - Date.now();
    if (remaining <= 0) return;
    head.sent = true;
    this.#waiting.set(head.id, (message) => this.#settle(head, replyOf(message)));
    try {
      channel.publish(
        REQUESTS_EXCHANGE,
        REQUESTS_QUEUE,
        Buffer.from(JSON.stringify({ type: head.action.type, data: head.action.data })),
        { type: "event", messageId: head.id, correlationId: head.id, replyTo, expiration: String(remaining) },
      );
    } catch {
      head.sent = false;
      return;
    }
    if (this.#legacy) {
      // An original engine never answers: the broker's confirm is all there is.
      channel.waitForConfirms().then(
        () => this.#settle(head, { status: "ok", response: {} }),
        () => (head.sent = false),
      );
      return;
    }
    if (head.resend !== null) clearTimeout(head.resend);
    head.resend = setTimeout(() => {
      head.resend = null;
      head.sent = false;
      this.#pump();
    }, this.#options.resendMs ?? RESEND_MS);
    head.resend.unref();
  }

  #settle(pending: Pending, reply: Reply): void {
    const index = this.#outbox.indexOf(pending);
    if (index === -1) return;
    this.#outbox.splice(index, 1);
    clearTimeout(pending.expiry);
    if (pending.resend !== null) clearTimeout(pending.resend);
    this.#waiting.delete(pending.id);
    pending.resolve(reply);
    this.#pump();
  }

  // ---- the Phoenix channel ------------------------------------------------------------------------------

  #topicHandler(): TopicHandler {
    return {
      join: (peer, payload) => this.#join(peer, payload),
      handle: async (_peer, event, payload) => {
        const data = typeof payload === "object" && payload !== null ? (payload as { data?: unknown }).data : undefined;
        const action = parseAction(event, data);
        if (isRefusal(action)) return { status: "error", response: { reason: action.reason, message: action.message } };
        return this.dispatch(action);
      },
      leave: (peer) => {
        this.#plain.delete(peer);
        this.#positioned.delete(peer);
      },
    };
  }

  async #join(peer: ChannelPeer, payload: Payload): Promise<Reply> {
    const positioned = typeof payload === "object" && payload !== null && "since" in payload;
    if (!positioned) {
      this.#plain.add(peer);
      return { status: "ok", response: {} };
    }
    if (!this.#loaded) {
      this.#requestSync();
      await Promise.race([new Promise<void>((resolve) => this.#loadWaiters.push(resolve)), sleep(RPC_TIMEOUT_MS)]);
      if (!this.#loaded) return unavailable("the engine did not answer");
    }
    const since = parsePosition((payload as { since: unknown }).since);
    const position = this.#position;
    this.#positioned.add(peer);
    if (since !== null && position !== null && since.epoch === position.epoch && since.offset >= this.#recentFrom) {
      for (const { offset, event } of this.#recent) {
        if (offset > since.offset) peer.push("change", { offset, ...eventJson(event) });
      }
      return { status: "ok", response: { resumed: true } };
    }
    return { status: "ok", response: { resumed: false, items: [...this.#items.values()], position } };
  }
}

function unavailable(message: string): Reply {
  return { status: "error", response: { reason: "engine_unavailable", message } };
}

/** The engine's answer to a change. */
function replyOf(message: ConsumeMessage): Reply {
  try {
    const body = JSON.parse(message.content.toString("utf8")) as Record<string, unknown>;
    if (body.status === "ok") return { status: "ok", response: body.event ?? {} };
    return { status: "error", response: { reason: body.reason ?? "internal_error", message: body.message ?? "" } };
  } catch {
    return { status: "error", response: { reason: "internal_error", message: "the engine's answer was not JSON" } };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
