/**
 * The bus over PostgreSQL LISTEN/NOTIFY, for a cluster that shares one database. NOTIFY is a doorbell here: one
 * `pg_notify` per tick carries the coalesced signals (well under the 8000-byte payload limit, split if need be).
 * One dedicated client LISTENs (application_name `conveyor-bus-<origin>`) and is re-opened with backoff when the
 * server restarts or its backend is terminated; NOTIFYs go through a separate one-connection pool, which keeps
 * them in order, replaces a dead connection by itself, and lives from start() to close().
 */
import pg from "pg";
import { RemoteBus, type BusLogger } from "./remote-bus.ts";

export type PostgresBusOptions = {
  connectionString: string;
  /** The NOTIFY channel; nodes on different channels do not hear each other. Default "conveyor". */
  channel?: string;
  logger?: BusLogger;
};

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;
/** PostgreSQL refuses a payload of 8000 bytes or more; stay clear of it. */
const MAX_PAYLOAD_BYTES = 7900;
const CONNECT_TIMEOUT_MS = 5000;

export class PostgresBus extends RemoteBus {
  readonly channel: string;
  /** The application_name of the LISTEN connection, to find it in pg_stat_activity. */
  readonly applicationName: string;
  readonly #connectionString: string;
  #listener: pg.Client | null = null;
  #notifier: pg.Pool | null = null;

  constructor(options: PostgresBusOptions) {
    super({ logger: options.logger, maxPayloadBytes: MAX_PAYLOAD_BYTES, transport: "postgres" });
    const channel = options.channel ?? "conveyor";
    if (!CHANNEL.test(channel)) {
      throw new TypeError(
        `PostgresBus: channel must match ${CHANNEL} (lower-case identifier, at most 63 characters), got ${JSON.stringify(channel)}`,
      );
    }
    if (typeof options.connectionString !== "string" || options.connectionString === "") {
      throw new TypeError("PostgresBus: connectionString is required");
    }
    this.channel = channel;
    this.applicationName = `conveyor-bus-${this.origin}`;
    this.#connectionString = options.connectionString;
  }

  protected async open(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#connectionString,
      application_name: this.applicationName,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    });
    this.#listener = client;
    const lost = (error: unknown) => {
      if (this.#listener === client) this.connectionLost(error);
    };
    client.on("error", lost);
    client.on("end", () => lost(new Error("LISTEN connection ended")));
    client.on("notification", (notification) => {
      if (this.#listener === client && notification.channel === this.channel && notification.payload !== undefined) {
        this.receive(notification.payload);
      }
    });
    await client.connect();
    await client.query(`LISTEN "${this.channel}"`);

    // The NOTIFY pool outlives LISTEN reconnects: it replaces a dead connection by itself, and waiting for its
    // in-flight NOTIFYs is no reason to delay re-LISTENing.
    if (this.#notifier === null) {
      const notifier = new pg.Pool({
        connectionString: this.#connectionString,
        application_name: `conveyor-bus-notify-${this.origin}`,
        max: 1,
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        query_timeout: CONNECT_TIMEOUT_MS,
        keepAlive: true,
      });
      // An idle pooled connection that dies is dropped by the pool; the next NOTIFY opens a fresh one.
      notifier.on("error", (error) => this.logger.debug({ err: error }, "postgres bus: idle NOTIFY connection lost"));
      this.#notifier = notifier;
    }
  }

  protected async shut(): Promise<void> {
    const client = this.#listener;
    this.#listener = null;
    if (client === null) return;
    await client.end().catch(() => {});
    // Late errors from a socket already torn down must not become unhandled 'error' events.
    client.removeAllListeners().on("error", () => {});
  }

  protected override async dispose(): Promise<void> {
    const notifier = this.#notifier;
    this.#notifier = null;
    if (notifier === null) return;
    await notifier.end().catch(() => {});
    notifier.removeAllListeners().on("error", () => {});
  }

  protected async transmit(payload: string): Promise<void> {
    const notifier = this.#notifier;
    if (notifier === null) throw new Error("postgres bus is not connected");
    await notifier.query("SELECT pg_notify($1, $2)", [this.channel, payload]);
  }
}
