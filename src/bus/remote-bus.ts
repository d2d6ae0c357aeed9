/**
 * The part the cross-node buses (PostgreSQL LISTEN/NOTIFY, RabbitMQ fanout) have in common: local subscribers hear
 * a publish at once (a microtask later, like LocalBus); other nodes hear it through the transport, coalesced per
 * tick and tagged with this bus's origin so its own echo is dropped; and a lost connection is re-opened with
 * exponential backoff while publishing keeps working locally. A signal that cannot be sent is dropped: the store
 * is the truth and every loop has a backstop poll, so a lost doorbell only costs latency.
 */
import { randomBytes } from "node:crypto";
import type { Bus, BusChannel, BusMessages } from "./bus.ts";
import { Coalescer, SignalCodec, type BusSignal } from "./coalesce.ts";
import { LocalBus } from "./local-bus.ts";

/** The subset of a pino logger the buses use. */
export interface BusLogger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

const silent: BusLogger = { debug() {}, info() {}, warn() {}, error() {} };

export type ReconnectInfo = { attempts: number; downMs: number };

/** 100 ms doubling to a 5 s cap, ±20 % jitter so that a cluster does not reconnect in lockstep. */
export function reconnectDelay(attempt: number, random: () => number = Math.random, minMs = 100, maxMs = 5000): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(Math.min(maxMs, base * (0.8 + 0.4 * random())));
}

type State = "idle" | "connecting" | "connected" | "waiting" | "closed";

export type RemoteBusOptions = { logger?: BusLogger | undefined; maxPayloadBytes: number; transport: string };

export abstract class RemoteBus implements Bus {
  /** Random per-instance id carried by every message this bus sends. */
  readonly origin = randomBytes(6).toString("hex");
  protected readonly logger: BusLogger;
  readonly #transport: string;
  readonly #local = new LocalBus();
  readonly #codec: SignalCodec;
  readonly #coalescer: Coalescer;
  readonly #reconnectListeners = new Set<(info: ReconnectInfo) => void>();
  readonly #disconnectListeners = new Set<(error: unknown) => void>();
  #state: State = "idle";
  #lostWhileConnecting = false;
  #attempt = 0;
  #downSince = 0;
  #timer: NodeJS.Timeout | null = null;
  #connecting: Promise<void> | null = null;
  readonly #sending = new Set<Promise<void>>();
  #shutting: Promise<void> | null = null;

  constructor(options: RemoteBusOptions) {
    this.logger = options.logger ?? silent;
    this.#transport = options.transport;
    this.#codec = new SignalCodec(this.origin, options.maxPayloadBytes);
    this.#coalescer = new Coalescer((signals) => {
      if (this.#state === "connected") this.#send(signals);
      else this.logger.debug({ count: signals.length }, `${this.#transport} bus disconnected; signals dropped`);
    });
  }

  /** Opens the transport's connections (listeners, channels). Called again, after close(), on every reconnect. */
  protected abstract open(): Promise<void>;
  /** Closes whatever open() opened, never throwing; events from the closed connections must be ignored. */
  protected abstract shut(): Promise<void>;
  /** Releases what lives across reconnects (called once by close(), and when start() fails); never throws. */
  protected async dispose(): Promise<void> {}
  /** Sends one payload to every node; may throw or reject when the transport is down. */
  protected abstract transmit(payload: string): Promise<void> | void;

  get connected(): boolean {
    return this.#state === "connected";
  }

  async start(): Promise<void> {
    if (this.#state !== "idle") throw new Error(`${this.#transport} bus: start() called twice or after close()`);
    this.#state = "connecting";
    const attempt = this.#openOnce();
    this.#connecting = attempt.catch(() => {});
    try {
      await attempt;
    } catch (error) {
      // After close() the transport is close()'s to shut, once this attempt has settled.
      if (this.#stateNow() === "closed") throw error;
      await this.shut();
      await this.dispose();
      if (this.#state === "connecting") this.#state = "idle";
      throw error;
    } finally {
      this.#connecting = null;
    }
    if (this.#state !== "connecting") throw new Error(`${this.#transport} bus closed while starting`);
    this.#state = "connected";
    this.logger.debug({ origin: this.origin }, `${this.#transport} bus connected`);
  }

  /** The state as it is now, after an await (TypeScript keeps the narrowing from before it). */
  #stateNow(): State {
    return this.#state;
  }

  async #openOnce(): Promise<void> {
    this.#lostWhileConnecting = false;
    await this.open();
    if (this.#lostWhileConnecting) throw new Error("connection lost while connecting");
  }

  publish<C extends BusChannel>(channel: C, message: BusMessages[C]): void {
    if (this.#state === "closed") return;
    this.#local.publish(channel, message);
    this.#coalescer.add({ channel, message } as BusSignal);
  }

  subscribe<C extends BusChannel>(channel: C, listener: (message: BusMessages[C]) => void): () => void {
    return this.#local.subscribe(channel, listener);
  }

  /**
   * Called after every reconnection (not after start()). Signals sent while this node was disconnected are lost,
   * so a listener should re-check what it waits for (e.g. ring every queue's wake-up). The bus itself also delivers
   * a local `events {}` at that moment.
   */
  onReconnect(listener: (info: ReconnectInfo) => void): () => void {
    this.#reconnectListeners.add(listener);
    return () => this.#reconnectListeners.delete(listener);
  }

  /** Called when the connection is lost; the bus then reconnects by itself (and calls the onReconnect listeners). */
  onDisconnect(listener: (error: unknown) => void): () => void {
    this.#disconnectListeners.add(listener);
    return () => this.#disconnectListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#state === "closed") return;
    const wasConnected = this.#state === "connected";
    this.#state = "closed";
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const pending = this.#coalescer.takePending();
    if (wasConnected && pending.length > 0) this.#send(pending);
    await Promise.allSettled([...this.#sending]);
    await this.#connecting?.catch(() => {});
    await this.#shutting;
    await this.shut();
    await this.dispose();
    await this.#local.close();
    this.#reconnectListeners.clear();
    this.#disconnectListeners.clear();
  }

  /** A transport hands every payload it receives to this. */
  protected receive(payload: string): void {
    if (this.#state === "closed") return;
    const signals = this.#codec.receive(payload);
    if (signals === null) {
      this.logger.debug(
        { payload: payload.slice(0, 200) },
        `${this.#transport} bus: ignored a message that is not ours`,
      );
      return;
    }
    for (const { channel, message } of signals) this.#local.publish(channel, message as never);
  }

  /** A transport calls this when its connection or channel fails or ends on its own. */
  protected connectionLost(error: unknown): void {
    if (this.#state === "connecting") this.#lostWhileConnecting = true;
    if (this.#state !== "connected") return;
    this.#state = "waiting";
    this.#downSince = Date.now();
    this.#attempt = 0;
    // Debug only: a node reports the loss as its bus:lost event; a bus on its own has no one else to tell.
    this.logger.debug({ err: error, origin: this.origin }, `${this.#transport} bus connection lost; reconnecting`);
    for (const listener of this.#disconnectListeners) {
      try {
        listener(error);
      } catch (listenerError) {
        this.logger.error({ err: listenerError }, `${this.#transport} bus: an onDisconnect listener threw`);
      }
    }
    this.#shutting = this.shut().then(() => {
      this.#shutting = null;
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#state !== "waiting") return;
    const delay = reconnectDelay(this.#attempt++);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#connecting = this.#reconnect().finally(() => (this.#connecting = null));
    }, delay);
  }

  async #reconnect(): Promise<void> {
    if (this.#state !== "waiting") return;
    this.#state = "connecting";
    try {
      await this.#openOnce();
    } catch (error) {
      if (this.#state !== "connecting") return;
      await this.shut();
      if (this.#state !== "connecting") return;
      this.#state = "waiting";
      this.logger.debug({ err: error, attempt: this.#attempt }, `${this.#transport} bus reconnect failed`);
      this.#schedule();
      return;
    }
    if (this.#state !== "connecting") return; // closed meanwhile: close() shuts the transport
    this.#state = "connected";
    const info: ReconnectInfo = { attempts: this.#attempt, downMs: Date.now() - this.#downSince };
    this.logger.debug({ ...info, origin: this.origin }, `${this.#transport} bus reconnected`);
    this.#local.publish("events", {});
    for (const listener of this.#reconnectListeners) {
      try {
        listener(info);
      } catch (error) {
        this.logger.error({ err: error }, `${this.#transport} bus: an onReconnect listener threw`);
      }
    }
  }

  #send(signals: BusSignal[]): void {
    const { payloads, dropped } = this.#codec.encode(signals);
    if (dropped.length > 0)
      this.logger.warn({ dropped }, `${this.#transport} bus: signals too large to send were dropped`);
    for (const payload of payloads) {
      const sending = (async () => this.transmit(payload))().catch((error: unknown) => {
        this.logger.debug({ err: error }, `${this.#transport} bus: send failed; signals dropped`);
      });
      this.#sending.add(sending);
      void sending.finally(() => this.#sending.delete(sending));
    }
  }
}
