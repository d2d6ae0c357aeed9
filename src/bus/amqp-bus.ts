/**
 * The bus over RabbitMQ, for a cluster where PostgreSQL should only store. A fanout exchange reaches every node;
 * each node consumes (noAck) from its own exclusive, server-named, auto-delete queue bound to it. One message per
 * tick carries the coalesced signals. When the connection or the channel fails (a broker restart, a forced close),
 * the whole topology is declared again on a new connection: the exchange, a new queue, its binding, the consumer.
 */
import amqp from "amqplib";
import type { Channel, ChannelModel } from "amqplib";
import { withDefaultHeartbeat } from "./amqp-heartbeat.ts";
import { RemoteBus, type BusLogger } from "./remote-bus.ts";

export type AmqpBusOptions = {
  /** e.g. amqp://guest:guest@127.0.0.1:5672; without a `heartbeat` in it, 5 s (a silent broker is lost in ~10 s). */
  url: string;
  /** The fanout exchange; nodes on different exchanges do not hear each other. Default "conveyor.bus". */
  exchange?: string;
  logger?: BusLogger;
};

const EXCHANGE = /^[A-Za-z0-9_.:-]{1,255}$/;
const MAX_PAYLOAD_BYTES = 1024 * 1024;
const CONNECT_TIMEOUT_MS = 5000;

export class AmqpBus extends RemoteBus {
  readonly exchange: string;
  readonly #url: string;
  #queue: string | null = null;
  #connection: ChannelModel | null = null;
  #channel: Channel | null = null;
  #connectionClosed: Promise<void> = Promise.resolve();

  constructor(options: AmqpBusOptions) {
    super({ logger: options.logger, maxPayloadBytes: MAX_PAYLOAD_BYTES, transport: "amqp" });
    const exchange = options.exchange ?? "conveyor.bus";
    if (!EXCHANGE.test(exchange) || exchange.startsWith("amq.")) {
      throw new TypeError(
        `AmqpBus: exchange must match ${EXCHANGE} and not start with "amq.", got ${JSON.stringify(exchange)}`,
      );
    }
    if (typeof options.url !== "string" || options.url === "") throw new TypeError("AmqpBus: url is required");
    this.exchange = exchange;
    this.#url = withDefaultHeartbeat(options.url);
  }

  /** The server-named queue of the current connection (a new one after every reconnect); null while down. */
  get queue(): string | null {
    return this.#queue;
  }

  protected async open(): Promise<void> {
    const connection = await amqp.connect(this.#url, {
      timeout: CONNECT_TIMEOUT_MS,
      clientProperties: { connection_name: `conveyor-bus-${this.origin}` },
    });
    this.#connection = connection;
    this.#connectionClosed = new Promise((resolve) => connection.once("close", () => resolve()));
    const lost = (error: unknown) => {
      if (this.#connection === connection) this.connectionLost(error);
    };
    connection.on("error", lost);
    connection.on("close", (error?: Error) => lost(error ?? new Error("AMQP connection closed")));

    const channel = await connection.createChannel();
    this.#channel = channel;
    channel.on("error", lost);
    channel.on("close", () => lost(new Error("AMQP channel closed")));
    await channel.assertExchange(this.exchange, "fanout", { durable: false });
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, this.exchange, "");
    await channel.consume(
      queue,
      (message) => {
        if (this.#connection !== connection) return;
        if (message === null) lost(new Error("AMQP consumer cancelled by the broker"));
        else this.receive(message.content.toString("utf8"));
      },
      { noAck: true },
    );
    this.#queue = queue;
  }

  protected async shut(): Promise<void> {
    const connection = this.#connection;
    this.#connection = null;
    this.#channel = null;
    this.#queue = null;
    if (connection === null) return;
    // Closing the connection closes its channel, and the broker deletes the exclusive queue. A connection the
    // broker is already closing never answers close(), so its 'close' event ends the wait too.
    await Promise.race([connection.close().catch(() => {}), this.#connectionClosed]);
    connection.removeAllListeners().on("error", () => {});
  }

  protected transmit(payload: string): void {
    const channel = this.#channel;
    if (channel === null) throw new Error("amqp bus is not connected");
    // false only means the socket buffer is full; the message is still queued, and signals are tiny.
    channel.publish(this.exchange, "", Buffer.from(payload), { contentType: "application/json" });
  }
}
