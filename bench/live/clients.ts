/**
 * The clients of the live bench, one class per system, both on `ws` underneath (socket.io-client uses it in Node),
 * and what each client counts. A Conveyor client speaks docs/live-protocol.md by hand: `subscribe` (from a
 * position, when given), then `event` frames; when its connection closes under it (a `4008 slow_consumer`, say) it
 * reconnects from the last offset it saw, as the protocol tells clients to. A Socket.IO client joins its room on
 * every (re)connection, as an application must (rooms do not survive a reconnect without state recovery).
 */
import type { Socket } from "socket.io-client";
import WebSocket from "ws";
import type { Message } from "./publisher.ts";
import { epochMs, type Fingerprint, fingerprint, fold, type Histogram, record } from "./stats.ts";

export type Position = { epoch: string; offset: number };

export type ClientReport = {
  channel: string;
  received: number;
  /** Distinct events: by (publisher, sequence number) where events carry one, else by offset. */
  distinct: number;
  duplicates: number;
  /** Events whose offset was not above the one before (Conveyor promises offset order per subscription). */
  outOfOrder: number;
  fingerprint: Fingerprint;
  reconnects: number;
  /** False when any (re)subscription came back recovered: false (Conveyor), or a reconnect was not recovered (Socket.IO). */
  recovered: boolean;
};

/** What one client received, checked as it arrives. */
export class Tally {
  readonly channel: string;
  readonly #latency: Histogram;
  received = 0;
  distinct = 0;
  duplicates = 0;
  outOfOrder = 0;
  lastOffset = -1;
  lastSeq = 0;
  reconnects = 0;
  recovered = true;
  readonly fp = fingerprint();
  /** Per publisher, which sequence numbers came (1 byte each: the runs are short). */
  readonly #seen: Uint8Array[] = [];

  /** The latency of events published on the client's own server, kept apart when given (else in `latency`). */
  readonly #sameServer: { node: number; latency: Histogram } | null;

  constructor(channel: string, latency: Histogram, sameServer: { node: number; latency: Histogram } | null = null) {
    this.channel = channel;
    this.#latency = latency;
    this.#sameServer = sameServer;
  }

  /** When the last event came (epoch ms). */
  lastAt = 0;

  event(message: Message | null, offset: number | null, sentAt: number): void {
    this.received++;
    this.lastAt = epochMs();
    const same = this.#sameServer !== null && message !== null && message.n === this.#sameServer.node;
    record(same ? this.#sameServer!.latency : this.#latency, this.lastAt - sentAt);
    if (offset !== null) {
      fold(this.fp, offset);
      if (offset <= this.lastOffset) this.outOfOrder++;
      else {
        this.lastOffset = offset;
        // Without a sequence number (task events), an offset above every one before is a new event.
        if (message === null) this.distinct++;
      }
    } else if (message === null) this.distinct++;
    if (message === null) return;
    this.lastSeq = message.s;
    let seen = this.#seen[message.n] ?? new Uint8Array(256);
    if (message.s >= seen.length) {
      const grown = new Uint8Array(Math.max(seen.length * 2, message.s + 1));
      grown.set(seen);
      seen = grown;
    }
    this.#seen[message.n] = seen;
    if (seen[message.s] === 1) this.duplicates++;
    else {
      seen[message.s] = 1;
      this.distinct++;
    }
  }

  report(): ClientReport {
    const { channel, received, distinct, duplicates, outOfOrder, reconnects, recovered } = this;
    return { channel, received, distinct, duplicates, outOfOrder, fingerprint: this.fp, reconnects, recovered };
  }
}

export interface LiveClient {
  readonly tally: Tally;
  /** Resolves once subscribed (joined). */
  connect(): Promise<void>;
  close(): void;
}

/** A client of Conveyor's `/api/live`, subscribed to one channel. */
export class ConveyorClient implements LiveClient {
  readonly tally: Tally;
  readonly #url: string;
  #since: Position | null;
  #epoch: string | null = null;
  #socket: WebSocket | null = null;
  #closing = false;

  constructor(url: string, tally: Tally, since: Position | null) {
    this.#url = url;
    this.tally = tally;
    this.#since = since;
  }

  /** Where the client is: the last offset it saw, in its log's epoch (what it resumes from). */
  get position(): Position {
    return { epoch: this.#epoch ?? this.#since?.epoch ?? "", offset: this.tally.lastOffset };
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.#url);
      this.#socket = socket;
      socket.on("open", () => {
        const since = this.#since ?? undefined;
        socket.send(JSON.stringify({ type: "subscribe", id: "s", channels: [this.tally.channel], since }));
      });
      socket.on("message", (data) => {
        const frame = JSON.parse(data.toString()) as Record<string, any>;
        if (frame.type === "event") this.#event(frame);
        else if (frame.type === "subscribed") {
          this.#epoch = frame.epoch;
          if (frame.recovered === false) this.tally.recovered = false;
          resolve();
        } else if (frame.type === "error") reject(new Error(`${frame.code}: ${frame.message}`));
      });
      socket.on("error", reject);
      socket.on("close", () => {
        if (this.#closing || this.#socket !== socket) return;
        // Resume from the last offset seen: the protocol's promise is that nothing is then missed or repeated.
        this.tally.reconnects++;
        if (this.tally.lastOffset >= 0) this.#since = this.position;
        this.connect().catch(() => {});
      });
    });
  }

  #event(frame: Record<string, any>): void {
    if (frame.channel === undefined) {
      // A task event: no publish time in it; its `at` (ms) is when the runtime wrote it.
      this.tally.event(null, frame.offset, Date.parse(frame.at));
    } else {
      const message = frame.data as Message;
      this.tally.event(message, frame.offset, message.t);
    }
  }

  close(): void {
    this.#closing = true;
    this.#socket?.close();
  }
}

/** A Socket.IO client (WebSocket transport), in the room of one channel. */
export class SocketIoClient implements LiveClient {
  readonly tally: Tally;
  readonly #url: string;
  #socket: Socket | null = null;
  #connections = 0;

  constructor(url: string, tally: Tally) {
    this.#url = url;
    this.tally = tally;
  }

  async connect(): Promise<void> {
    // Loaded here, so that Conveyor's side of the bench runs without the peers installed.
    const { io } = await import("socket.io-client");
    return new Promise((resolve, reject) => {
      const socket = io(this.#url, { transports: ["websocket"], forceNew: true });
      this.#socket = socket;
      socket.on("connect", () => {
        if (this.#connections++ > 0) {
          this.tally.reconnects++;
          if (!socket.recovered) this.tally.recovered = false;
        }
        socket.emit("join", this.tally.channel, () => resolve());
      });
      socket.on("connect_error", (error) => {
        if (this.#connections === 0) reject(error);
      });
      socket.on("m", (_channel: string, message: Message) => this.tally.event(message, null, message.t));
    });
  }

  close(): void {
    this.#socket?.disconnect();
  }
}
