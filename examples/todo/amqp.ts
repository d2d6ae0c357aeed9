/**
 * The seed's RabbitMQ topology (contract A.6), names and properties exactly, and one connection that comes back.
 *
 *   ztd.todo.requests.exchange    direct, non-durable; worker -> engine
 *   ztd.todo.requests.queue       non-durable, bound with routing key = its name; `type` "event" or "rpc"
 *   ztd.todo.broadcasts.exchange  fanout, non-durable; engine -> every worker, published with routing key
 *                                 ztd.todo.broadcasts.routing (ignored by a fanout)
 *
 * Both sides declare what they use with the seed's arguments, so an original engine or worker declaring the same
 * names never meets a PRECONDITION_FAILED. What Conveyor's version adds rides in places the seed never looked at:
 * message headers (a broadcast's log position), `message_id`, `correlation_id` and `reply_to` on an event (so the
 * engine can answer it), `expiration` (so a change nobody took in time is dropped). An original peer ignores them.
 *
 * AmqpLink: the seed opened its connections once and crashed when the broker went away (no reconnect beyond its
 * supervisor's restarts). A link connects, runs `setup` on the new connection (declare, consume), and on any loss
 * of the connection or of a channel starts over on a new connection, with backoff, until closed.
 */
import amqp, { type ChannelModel } from "amqplib";

export const REQUESTS_EXCHANGE = "ztd.todo.requests.exchange";
export const REQUESTS_QUEUE = "ztd.todo.requests.queue";
export const BROADCASTS_EXCHANGE = "ztd.todo.broadcasts.exchange";
export const BROADCASTS_ROUTING_KEY = "ztd.todo.broadcasts.routing";
/** The worker's RPC timeout, hard-coded in the seed's worker/rpc.ex. */
export const RPC_TIMEOUT_MS = 2000;

/** Headers on a broadcast (and an `all` answer): where the event (the list) stands in the engine's log. */
export const HEADER_EPOCH = "ztd-epoch";
export const HEADER_OFFSET = "ztd-offset";
export const HEADER_PREVIOUS = "ztd-previous";

export const EXCHANGE_OPTIONS = { durable: false, autoDelete: false, internal: false } as const;
export const QUEUE_OPTIONS = { durable: false, exclusive: false, autoDelete: false } as const;

/** The requests exchange, queue and binding, as the seed's engine Listener and worker Dispatcher declare them. */
export async function declareRequests(channel: amqp.Channel): Promise<void> {
  await channel.assertExchange(REQUESTS_EXCHANGE, "direct", EXCHANGE_OPTIONS);
  await channel.assertQueue(REQUESTS_QUEUE, QUEUE_OPTIONS);
  await channel.bindQueue(REQUESTS_QUEUE, REQUESTS_EXCHANGE, REQUESTS_QUEUE);
}

export async function declareBroadcasts(channel: amqp.Channel): Promise<void> {
  await channel.assertExchange(BROADCASTS_EXCHANGE, "fanout", EXCHANGE_OPTIONS);
}

/** A number header (amqplib gives numbers back as numbers, or as {'!': type, value} for some encodings). */
export function numberHeader(headers: Record<string, unknown> | undefined, name: string): number | null {
  const raw = headers?.[name];
  const value = typeof raw === "object" && raw !== null && "value" in raw ? (raw as { value: unknown }).value : raw;
  const number = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  return typeof number === "number" && Number.isSafeInteger(number) && number >= 0 ? number : null;
}

export function stringHeader(headers: Record<string, unknown> | undefined, name: string): string | null {
  const value = headers?.[name];
  if (typeof value === "string" && value !== "") return value;
  if (Buffer.isBuffer(value) && value.length > 0) return value.toString("utf8");
  return null;
}

export type LinkLog = (level: "debug" | "info" | "warn" | "error", message: string) => void;

export type AmqpLinkOptions = {
  url: string;
  /** Shown in RabbitMQ's connection list. */
  name: string;
  /** Declares and consumes on a new connection; a throw closes it and the link tries again. */
  setup: (connection: ChannelModel) => Promise<void>;
  /** Called once a new connection is set up. */
  onUp?: () => void;
  /** Called when a connection set up by `setup` is lost (before the link tries again). */
  onDown?: () => void;
  log?: LinkLog;
  minDelayMs?: number;
  maxDelayMs?: number;
};

const CONNECT_TIMEOUT_MS = 5000;

export class AmqpLink {
  readonly #options: AmqpLinkOptions;
  #connection: ChannelModel | null = null;
  #attempt = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #upWaiters: (() => void)[] = [];

  constructor(options: AmqpLinkOptions) {
    this.#options = options;
  }

  /** The connection, once set up; null while down. */
  get connection(): ChannelModel | null {
    return this.#connection;
  }

  get up(): boolean {
    return this.#connection !== null;
  }

  /** Starts connecting (and keeps trying); does not wait. */
  start(): void {
    void this.#connect();
  }

  /** Resolves once the link is up (at once when it is). */
  whenUp(): Promise<void> {
    if (this.#connection !== null) return Promise.resolve();
    return new Promise((resolve) => this.#upWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    const connection = this.#connection;
    this.#connection = null;
    if (connection !== null) await closeQuietly(connection);
  }

  /** Drops the connection and connects again (for a channel that failed). */
  reset(reason: string): void {
    const connection = this.#connection;
    if (connection === null) return;
    this.#lost(connection, new Error(reason));
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const log = this.#options.log ?? (() => {});
    let connection: ChannelModel | null = null;
    try {
      connection = await amqp.connect(this.#options.url, {
        timeout: CONNECT_TIMEOUT_MS,
        clientProperties: { connection_name: this.#options.name },
      });
      const opened = connection;
      opened.on("error", (error: Error) => log("debug", `AMQP connection error: ${error.message}`));
      opened.on("close", () => this.#lost(opened, new Error("connection closed")));
      if (this.#closed) return void (await closeQuietly(opened));
      await this.#options.setup(opened);
      if (this.#closed) return void (await closeQuietly(opened));
      this.#connection = opened;
      if (this.#attempt > 0) log("info", `AMQP connection back after ${this.#attempt} attempt(s)`);
      this.#attempt = 0;
      for (const resolve of this.#upWaiters.splice(0)) resolve();
      this.#options.onUp?.();
    } catch (error) {
      if (connection !== null) {
        connection.removeAllListeners("close");
        await closeQuietly(connection);
      }
      if (this.#attempt === 0)
        log("warn", `AMQP: cannot connect to the broker (${(error as Error).message}); retrying`);
      this.#schedule();
    }
  }

  #lost(connection: ChannelModel, error: Error): void {
    connection.removeAllListeners("close");
    if (this.#connection === connection) {
      this.#connection = null;
      (this.#options.log ?? (() => {}))("warn", `AMQP connection lost (${error.message}); reconnecting`);
      this.#options.onDown?.();
      void closeQuietly(connection);
    }
    if (!this.#closed && this.#timer === null && this.#connection === null) this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#timer !== null) return;
    const min = this.#options.minDelayMs ?? 100;
    const max = this.#options.maxDelayMs ?? 3000;
    const delay = Math.min(max, min * 2 ** Math.min(this.#attempt, 20)) * (0.8 + 0.4 * Math.random());
    this.#attempt++;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#connect();
    }, delay);
    this.#timer.unref();
  }
}

async function closeQuietly(connection: ChannelModel): Promise<void> {
  connection.removeAllListeners("close");
  connection.on("error", () => {});
  // A connection the broker is closing may never answer close(): do not wait for it long.
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, 1000).unref());
  await Promise.race([connection.close().catch(() => {}), timeout]);
}
