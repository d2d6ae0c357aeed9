/**
 * The Phoenix 1.3 socket on `/socket/websocket`, as the seed's clients speak it (contract A.4): the V2 serializer
 * (`?vsn=2.0.0`, array frames `[join_ref, ref, topic, event, payload]`) and the V1 one (no `vsn`, object frames
 * `{topic, event, payload, ref}`). Heartbeats on topic `phoenix` are answered without a join; a join of a topic
 * nobody serves, or a message on a topic not joined, is answered `unmatched topic`; a second join of a joined topic
 * closes the first (phx_close) and joins again; phx_leave answers ok, then phx_close. A connection silent for 60 s
 * is closed, as Cowboy's timeout closed the seed's.
 *
 * Where the seed's channel crashed (an unknown event, a push without `data`, an id it could not cast), a topic's
 * handler here answers every push with a phx_reply, ok or error, and the channel stays joined. A frame that is not
 * a Phoenix message (bad JSON, a binary frame, a wrong shape) is dropped and logged; the connection stays.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type RawData, type WebSocket, WebSocketServer } from "ws";

export const SOCKET_PATH = "/socket/websocket";
/** Cowboy's idle timeout in Phoenix 1.3's websocket transport. */
export const IDLE_TIMEOUT_MS = 60_000;
/** Largest frame accepted (ws closes the connection with 1009 above it). */
export const MAX_FRAME_BYTES = 1024 * 1024;

// biome-ignore lint/suspicious/noExplicitAny: a payload is any JSON the client sent
export type Payload = any;

export type Reply = { status: "ok" | "error"; response: Payload };

/** A joined topic as its handler sees it. */
export interface ChannelPeer {
  readonly topic: string;
  /** Sends `event` to this client as the channel's own push (with its join_ref); held until the join's reply. */
  push(event: string, payload: Payload): void;
  /** Sends `event` as Phoenix sends an Endpoint.broadcast (`[null, null, topic, event, payload]`). */
  broadcast(event: string, payload: Payload): void;
}

export interface TopicHandler {
  /**
   * Answers a join: ok (with a response) or error. The peer may push before this resolves; those pushes follow the
   * reply. `leave` is called when the channel closes, however it closes (leave, rejoin, disconnect).
   */
  join(peer: ChannelPeer, payload: Payload): Promise<Reply>;
  /** Answers a message the client pushed on the joined topic. Pushes of one channel are handled one at a time. */
  handle(peer: ChannelPeer, event: string, payload: Payload): Promise<Reply>;
  leave(peer: ChannelPeer): void;
}

export type PhoenixLog = (level: "debug" | "warn", message: string) => void;

type Message = { joinRef: string | null; ref: string | null; topic: string; event: string; payload: Payload };

type Serializer = {
  decode(text: string): Message | null;
  encode(message: Message): string;
};

const V2: Serializer = {
  decode(text) {
    const frame = parseJson(text);
    if (!Array.isArray(frame) || frame.length !== 5) return null;
    const [joinRef, ref, topic, event, payload] = frame;
    if (!isRef(joinRef) || !isRef(ref) || typeof topic !== "string" || typeof event !== "string") return null;
    return { joinRef: refText(joinRef), ref: refText(ref), topic, event, payload };
  },
  encode: (m) => JSON.stringify([m.joinRef, m.ref, m.topic, m.event, m.payload]),
};

const V1: Serializer = {
  decode(text) {
    const frame = parseJson(text);
    if (typeof frame !== "object" || frame === null || Array.isArray(frame)) return null;
    const { topic, event, payload, ref, join_ref: joinRef } = frame as Record<string, unknown>;
    if (typeof topic !== "string" || typeof event !== "string" || !isRef(ref) || !isRef(joinRef)) return null;
    return { joinRef: refText(joinRef), ref: refText(ref), topic, event, payload };
  },
  // V1 frames carry no join_ref.
  encode: (m) => JSON.stringify({ topic: m.topic, event: m.event, payload: m.payload, ref: m.ref }),
};

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRef(value: unknown): value is string | number | null | undefined {
  return value === null || value === undefined || typeof value === "string" || typeof value === "number";
}

function refText(value: string | number | null | undefined): string | null {
  return value === null || value === undefined ? null : String(value);
}

/**
 * The serializer for a `vsn` query parameter, as Phoenix 1.3 negotiates it: none is 1.0.0; `~> 1.0.0` is V1,
 * `~> 2.0.0` is V2; anything else is refused (403).
 */
export function serializerFor(vsn: string | null): Serializer | null {
  const version = vsn ?? "1.0.0";
  if (/^1\.0\.\d+$/.test(version)) return V1;
  if (/^2\.0\.\d+$/.test(version)) return V2;
  return null;
}

export class PhoenixSocketServer {
  readonly #topics: Map<string, TopicHandler>;
  readonly #log: PhoenixLog;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  readonly #connections = new Set<Connection>();
  readonly #idleTimeoutMs: number;

  constructor(options: { topics: Record<string, TopicHandler>; log?: PhoenixLog; idleTimeoutMs?: number }) {
    this.#topics = new Map(Object.entries(options.topics));
    this.#log = options.log ?? (() => {});
    this.#idleTimeoutMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
  }

  get connections(): number {
    return this.#connections.size;
  }

  /** For a node:http server's 'upgrade' event: takes `/socket/websocket`, refuses anything else. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://localhost");
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    if (url.pathname !== SOCKET_PATH) return void refuse(404, "Not Found");
    const serializer = serializerFor(url.searchParams.get("vsn"));
    if (serializer === null) return void refuse(403, "Forbidden");
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new Connection(ws, serializer, this.#topics, this.#log, this.#idleTimeoutMs);
      this.#connections.add(connection);
      ws.once("close", () => this.#connections.delete(connection));
    });
  }

  /** Closes every connection (1001, going away); their channels leave. */
  close(): void {
    for (const connection of this.#connections) connection.close(1001, "server stopping");
    this.#connections.clear();
  }
}

class Channel implements ChannelPeer {
  readonly topic: string;
  readonly joinRef: string | null;
  readonly #connection: Connection;
  /** Pushes made before the join's reply went out; null once it has. */
  #held: Message[] | null = [];
  #closed = false;
  /** The channel's pushes, handled one after another like a channel process's mailbox. */
  tail: Promise<void> = Promise.resolve();

  constructor(connection: Connection, topic: string, joinRef: string | null) {
    this.#connection = connection;
    this.topic = topic;
    this.joinRef = joinRef;
  }

  get closed(): boolean {
    return this.#closed;
  }

  push(event: string, payload: Payload): void {
    this.#send({ joinRef: this.joinRef, ref: null, topic: this.topic, event, payload });
  }

  broadcast(event: string, payload: Payload): void {
    this.#send({ joinRef: null, ref: null, topic: this.topic, event, payload });
  }

  #send(message: Message): void {
    if (this.#closed) return;
    if (this.#held !== null) this.#held.push(message);
    else this.#connection.send(message);
  }

  /** Sends what was held back (after the join's reply). */
  release(): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const message of held) this.#send(message);
  }

  markClosed(): void {
    this.#closed = true;
    this.#held = null;
  }
}

class Connection {
  readonly #ws: WebSocket;
  readonly #serializer: Serializer;
  readonly #topics: Map<string, TopicHandler>;
  readonly #log: PhoenixLog;
  readonly #channels = new Map<string, Channel>();
  readonly #idleTimeoutMs: number;
  #idle: NodeJS.Timeout;

  constructor(
    ws: WebSocket,
    serializer: Serializer,
    topics: Map<string, TopicHandler>,
    log: PhoenixLog,
    idleTimeoutMs: number,
  ) {
    this.#ws = ws;
    this.#serializer = serializer;
    this.#topics = topics;
    this.#log = log;
    this.#idleTimeoutMs = idleTimeoutMs;
    this.#idle = this.#idleTimer();
    ws.on("message", (data: RawData, isBinary: boolean) => this.#receive(data, isBinary));
    ws.on("close", () => this.#closed());
    ws.on("error", (error) => this.#log("debug", `socket error: ${error.message}`));
  }

  send(message: Message): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(this.#serializer.encode(message));
  }

  close(code: number, reason: string): void {
    this.#ws.close(code, reason);
    this.#closed();
  }

  #idleTimer(): NodeJS.Timeout {
    const timer = setTimeout(() => this.close(1000, "idle"), this.#idleTimeoutMs);
    timer.unref();
    return timer;
  }

  #reply(message: Message, reply: Reply, joinRef: string | null = message.joinRef): void {
    this.send({
      joinRef,
      ref: message.ref,
      topic: message.topic,
      event: "phx_reply",
      payload: { status: reply.status, response: reply.response },
    });
  }

  #receive(data: RawData, isBinary: boolean): void {
    clearTimeout(this.#idle);
    this.#idle = this.#idleTimer();
    const message = isBinary ? null : this.#serializer.decode(data.toString());
    if (message === null) {
      this.#log("debug", "dropped a frame that is not a Phoenix message");
      return;
    }
    if (message.topic === "phoenix" && message.event === "heartbeat") {
      this.#reply(message, { status: "ok", response: {} });
      return;
    }
    const channel = this.#channels.get(message.topic);
    if (message.event === "phx_join") {
      const handler = this.#topics.get(message.topic);
      if (handler === undefined) return void this.#unmatched(message);
      if (channel !== undefined) this.#leave(channel, "phx_close");
      this.#join(handler, message);
      return;
    }
    if (channel === undefined) return void this.#unmatched(message);
    const handler = this.#topics.get(channel.topic)!;
    if (message.event === "phx_leave") {
      channel.tail = channel.tail.then(() => {
        this.#reply(message, { status: "ok", response: {} }, channel.joinRef);
        this.#leave(channel, "phx_close");
      });
      return;
    }
    channel.tail = channel.tail.then(async () => {
      if (channel.closed) return;
      const reply = await answer(() => handler.handle(channel, message.event, message.payload), this.#log);
      if (!channel.closed) this.#reply(message, reply, channel.joinRef);
    });
  }

  #join(handler: TopicHandler, message: Message): void {
    const channel = new Channel(this, message.topic, message.joinRef);
    this.#channels.set(message.topic, channel);
    channel.tail = (async () => {
      const reply = await answer(() => handler.join(channel, message.payload ?? {}), this.#log);
      if (channel.closed) return;
      this.#reply(message, reply);
      if (reply.status === "ok") channel.release();
      else this.#leave(channel, null);
    })();
  }

  #unmatched(message: Message): void {
    this.#log("warn", `Ignoring unmatched topic ${JSON.stringify(message.topic)}`);
    this.#reply(message, { status: "error", response: { reason: "unmatched topic" } });
  }

  /** Ends a channel: tells its handler, and the client with `event` (phx_close) when one is given. */
  #leave(channel: Channel, event: "phx_close" | null): void {
    if (this.#channels.get(channel.topic) === channel) this.#channels.delete(channel.topic);
    if (channel.closed) return;
    channel.markClosed();
    this.#topics.get(channel.topic)?.leave(channel);
    if (event !== null) {
      this.send({ joinRef: channel.joinRef, ref: channel.joinRef, topic: channel.topic, event, payload: {} });
    }
  }

  #closed(): void {
    clearTimeout(this.#idle);
    for (const channel of [...this.#channels.values()]) this.#leave(channel, null);
  }
}

/** A handler's answer; a handler that throws is an internal_error reply, and the channel goes on. */
async function answer(run: () => Promise<Reply>, log: PhoenixLog): Promise<Reply> {
  try {
    return await run();
  } catch (error) {
    log("warn", `a channel handler failed: ${error instanceof Error ? error.message : String(error)}`);
    return { status: "error", response: { reason: "internal_error", message: "the server failed to handle it" } };
  }
}
