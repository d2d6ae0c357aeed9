/**
 * The soak's live subscribers: WebSocket clients of /api/live (docs/live-protocol.md), each subscribed to one channel
 * and counting the events it gets. A client whose connection closes reconnects from the last offset it saw, as the
 * protocol tells clients to, and the close is counted: the soak reports them (a slow consumer is cut off at
 * 4008), since a subscriber that keeps dropping would hide a stream that stopped.
 */
import WebSocket from "ws";

type Position = { epoch: string; offset: number };

export class Subscriber {
  readonly channel: string;
  events = 0;
  closes: Record<string, number> = {};
  #position: Position | null = null;
  #socket: WebSocket | null = null;
  #stopped = false;
  readonly #url: string;

  constructor(baseUrl: string, channel: string) {
    this.#url = `${baseUrl.replace(/^http/, "ws")}/api/live`;
    this.channel = channel;
  }

  /** Resolves once the first subscription is answered. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => this.#connect(resolve, reject));
  }

  #connect(onSubscribed: () => void, onError: (error: Error) => void): void {
    const socket = new WebSocket(this.#url);
    this.#socket = socket;
    socket.on("open", () => {
      const since = this.#position === null ? {} : { since: this.#position };
      socket.send(JSON.stringify({ type: "subscribe", id: "s", channels: [this.channel], ...since }));
    });
    socket.on("message", (raw) => {
      const frame = JSON.parse(String(raw)) as { type: string; offset?: number; epoch?: string };
      if (frame.type === "event") {
        this.events++;
        if (this.#position !== null) this.#position.offset = frame.offset!;
      } else if (frame.type === "subscribed") {
        this.#position = { epoch: frame.epoch!, offset: frame.offset! };
        onSubscribed();
      } else if (frame.type === "ping" && this.#position !== null && frame.offset! > this.#position.offset)
        this.#position.offset = frame.offset!;
      else if (frame.type === "error") onError(new Error(`live error frame: ${String(raw)}`));
    });
    socket.on("error", (error) => onError(error));
    socket.on("close", (code) => {
      if (this.#stopped) return;
      this.closes[code] = (this.closes[code] ?? 0) + 1;
      setTimeout(
        () =>
          this.#connect(
            () => {},
            () => {},
          ),
        500,
      );
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#socket?.close();
  }
}
