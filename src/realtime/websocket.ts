/**
 * One WebSocket connection of the live protocol (docs/live-protocol.md): its subscriptions, its heartbeat, and a
 * send buffer bounded in bytes. A client that stops reading is cut off with 4008 slow_consumer once the socket has
 * more than `maxBufferBytes` waiting, and then resumes from its last offset; the server's memory stays bounded and
 * other clients never wait for it.
 */
import type { WebSocket } from "ws";
import type { Json, LogEvent } from "../core/task.ts";
import type { Access } from "./access.ts";
import type { LiveNode, LiveSubscriptionHandle } from "./live-node.ts";
import { type ClientFrame, eventFrame, isRefusal, parseClientFrame, type Refusal } from "./protocol.ts";

export const MAX_SUBSCRIPTIONS = 100;
export const CLOSE_SLOW_CONSUMER = 4008;
/**
 * Events a subscription may hold while its replay is written out at the client's pace: past this many, the client
 * reads slower than the log grows, and is cut off.
 */
export const MAX_QUEUED_EVENTS = 20_000;

export type LiveSessionOptions = { heartbeatMs: number; maxBufferBytes: number };

type Subscription = {
  handle: LiveSubscriptionHandle | null;
  /** Events that came before the `subscribed` frame went out. */
  early: LogEvent[] | null;
};

export class LiveSession {
  readonly #socket: WebSocket;
  readonly #node: LiveNode;
  readonly #access: Access;
  readonly #options: LiveSessionOptions;
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #heartbeat: NodeJS.Timeout;
  #awaitingPong = 0;
  #closed = false;
  readonly #ended: Promise<void>;
  #resolveEnded: () => void = () => {};

  constructor(socket: WebSocket, node: LiveNode, access: Access, options: LiveSessionOptions) {
    this.#socket = socket;
    this.#node = node;
    this.#access = access;
    this.#options = options;
    this.#ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    socket.on("message", (data, isBinary) => {
      if (isBinary) this.#refuse({ code: "invalid_frame", message: "frames are JSON text" });
      else void this.#onFrame(data.toString());
    });
    socket.on("pong", () => (this.#awaitingPong = 0));
    socket.on("close", () => this.#end());
    socket.on("error", () => this.#end());
    this.#heartbeat = setInterval(() => this.#beat(), options.heartbeatMs);
    void this.#welcome();
  }

  async #welcome(): Promise<void> {
    try {
      const { epoch, offset } = await this.#node.position();
      this.#send({
        type: "welcome",
        node: this.#node.nodeId,
        epoch,
        offset,
        heartbeatMs: this.#options.heartbeatMs,
        maxBufferBytes: this.#options.maxBufferBytes,
      });
    } catch {
      this.#socket.close(1011, "the store does not answer");
    }
  }

  async #onFrame(text: string): Promise<void> {
    const frame = parseClientFrame(text);
    if (isRefusal(frame)) return this.#refuse(frame);
    try {
      await this.#handle(frame);
    } catch (error) {
      const about = frame.type === "subscribe" || frame.type === "unsubscribe" ? { id: frame.id } : {};
      this.#refuse({
        code: "publish_failed",
        message: error instanceof Error ? error.message : String(error),
        ...about,
      });
    }
  }

  async #handle(frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case "auth":
        if (this.#access.presentApiToken(frame.token)) this.#send({ type: "authed" });
        else this.#refuse({ code: "unauthorized", message: "the token is not the API token" });
        return;
      case "ping":
        this.#send({ type: "pong", ref: frame.ref, ...(await this.#node.position()) });
        return;
      case "unsubscribe": {
        const subscription = this.#subscriptions.get(frame.id);
        if (subscription === undefined)
          return this.#refuse({ code: "unknown_subscription", message: "no such subscription", id: frame.id });
        this.#subscriptions.delete(frame.id);
        subscription.handle?.close();
        this.#send({ type: "unsubscribed", id: frame.id });
        return;
      }
      case "publish": {
        const refused = this.#access.publish(frame.channel, frame.token);
        if (refused !== null) return this.#refuse({ ...refused, ref: frame.ref });
        await this.#node.publish(frame.channel, frame.data);
        this.#send({ type: "published", ref: frame.ref });
        return;
      }
      case "subscribe":
        return this.#subscribe(frame);
    }
  }

  async #subscribe(frame: Extract<ClientFrame, { type: "subscribe" }>): Promise<void> {
    const { id } = frame;
    if (this.#subscriptions.has(id))
      return this.#refuse({ code: "duplicate_subscription", message: "this id is in use", id });
    if (this.#subscriptions.size >= MAX_SUBSCRIPTIONS) {
      return this.#refuse({
        code: "too_many_subscriptions",
        message: `at most ${MAX_SUBSCRIPTIONS} per connection`,
        id,
      });
    }
    const channels = this.#access.follow(frame.channels, frame.token);
    if (!Array.isArray(channels)) return this.#refuse({ ...channels, id });
    const subscription: Subscription = { handle: null, early: [] };
    this.#subscriptions.set(id, subscription);
    let handle: LiveSubscriptionHandle;
    try {
      handle = await this.#node.subscribe(frame.channels, { since: frame.since ?? undefined }, (event) => {
        if (subscription.early !== null) subscription.early.push(event);
        else this.#send(eventFrame(id, event));
      });
    } catch (error) {
      this.#subscriptions.delete(id);
      throw error;
    }
    if (this.#closed || this.#subscriptions.get(id) !== subscription) return handle.close();
    subscription.handle = handle;
    const answer: Record<string, Json> = {
      type: "subscribed",
      id,
      channels: frame.channels,
      recovered: handle.recovered,
    };
    if (handle.reason !== null) answer.reason = handle.reason;
    this.#send({ ...answer, epoch: handle.position.epoch, offset: handle.position.offset });
    await this.#flushEarly(id, subscription);
  }

  /**
   * Sends what came before `subscribed` (a replay of up to the node's replay limit) at the pace the client reads:
   * whenever the socket holds more than half its budget, it waits until the socket has written it all out. Live
   * events that arrive meanwhile queue behind, in order. Written in one go, a replay larger than the budget would
   * cut off every client that reconnects far behind, over any real network.
   */
  async #flushEarly(id: string, subscription: Subscription): Promise<void> {
    const early = subscription.early ?? [];
    for (let i = 0; i < early.length; i++) {
      if (this.#closed) return;
      if (early.length - i > MAX_QUEUED_EVENTS) return this.#cutOff();
      const frame = JSON.stringify(eventFrame(id, early[i]!));
      if (this.#socket.bufferedAmount + frame.length <= this.#options.maxBufferBytes / 2) {
        this.#socket.send(frame);
        continue;
      }
      // Past half the budget: the next frame waits until this one, and all before it, are written to the network.
      await Promise.race([new Promise<void>((resolve) => this.#socket.send(frame, () => resolve())), this.#ended]);
    }
    subscription.early = null;
  }

  /** The heartbeat: the position every subscription is live up to, and a WebSocket ping to find dead peers. */
  #beat(): void {
    if (this.#awaitingPong >= 2) {
      this.#socket.terminate();
      return;
    }
    this.#awaitingPong++;
    this.#socket.ping();
    void this.#node.epoch().then(
      (epoch) => this.#send({ type: "ping", epoch, offset: this.#liveUpTo() }),
      () => {},
    );
  }

  /** The lowest position among this connection's subscriptions: resuming from it loses nothing on any of them. */
  #liveUpTo(): number {
    let lowest = this.#node.cursor;
    for (const { handle, early } of this.#subscriptions.values()) {
      if (handle === null || early !== null) return Math.min(lowest, handle?.position.offset ?? 0);
      lowest = Math.min(lowest, handle.offset);
    }
    return lowest;
  }

  #refuse(refusal: Refusal): void {
    const frame: Record<string, Json> = { type: "error", code: refusal.code, message: refusal.message };
    if (refusal.id !== undefined) frame.id = refusal.id;
    if (refusal.ref !== undefined) frame.ref = refusal.ref;
    this.#send(frame);
  }

  #send(frame: Record<string, Json>): void {
    if (this.#closed) return;
    if (this.#socket.bufferedAmount > this.#options.maxBufferBytes) {
      this.#cutOff();
      return;
    }
    this.#socket.send(JSON.stringify(frame));
  }

  /** A client that does not read fast enough: closed, to resume from its last offset once it can. */
  #cutOff(): void {
    this.#socket.close(CLOSE_SLOW_CONSUMER, "slow_consumer");
    this.#end();
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#resolveEnded();
    clearInterval(this.#heartbeat);
    for (const { handle } of this.#subscriptions.values()) handle?.close();
    this.#subscriptions.clear();
  }
}
