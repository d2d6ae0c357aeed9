/**
 * What the cross-node buses share about their messages: the signals one tick publishes are reduced to the fewest
 * that mean the same (the messages are doorbells, so ringing once is as good as ringing a thousand times), packed
 * into compact JSON payloads tagged with the sender's origin, and read back with the sender's own echoes dropped.
 *
 * Wire format: a JSON array, the origin first, then one tuple per signal:
 *   ["3f2a…", ["e"], ["w", "emails"], ["s", 1767225600000], ["c", 42]]
 */
import type { BusChannel, BusMessages } from "./bus.ts";

export type BusSignal = { [C in BusChannel]: { channel: C; message: BusMessages[C] } }[BusChannel];

type WireEntry = ["e"] | ["w", string] | ["c", number] | ["s", number];

/**
 * The signals of one tick, deduplicated: `events` once, `wake` once per queue, `scheduled` only the earliest `at`
 * (the scheduler re-reads the store, so the earliest is the only one that can make it wake sooner), every distinct
 * `cancel` id.
 */
export class SignalBatch {
  #events = false;
  readonly #wakes = new Set<string>();
  readonly #cancels = new Set<number>();
  #scheduledAt = Infinity;

  add(signal: BusSignal): void {
    switch (signal.channel) {
      case "events":
        this.#events = true;
        break;
      case "wake":
        this.#wakes.add(signal.message.queue);
        break;
      case "cancel":
        this.#cancels.add(signal.message.id);
        break;
      case "scheduled":
        if (signal.message.at < this.#scheduledAt) this.#scheduledAt = signal.message.at;
        break;
    }
  }

  get empty(): boolean {
    return !this.#events && this.#wakes.size === 0 && this.#cancels.size === 0 && this.#scheduledAt === Infinity;
  }

  /** Returns the reduced signals (cancels first: they are the ones a user waits on) and empties the batch. */
  drain(): BusSignal[] {
    const signals: BusSignal[] = [];
    for (const id of this.#cancels) signals.push({ channel: "cancel", message: { id } });
    for (const queue of this.#wakes) signals.push({ channel: "wake", message: { queue } });
    if (this.#scheduledAt !== Infinity) signals.push({ channel: "scheduled", message: { at: this.#scheduledAt } });
    if (this.#events) signals.push({ channel: "events", message: {} });
    this.#events = false;
    this.#wakes.clear();
    this.#cancels.clear();
    this.#scheduledAt = Infinity;
    return signals;
  }
}

/**
 * How long a batch holding nothing but `events` waits before it is sent. A busy node writes events on almost
 * every tick; sent per tick, the doorbell alone cost its PostgreSQL drain a tenth of its rate (a NOTIFY, and its
 * echo, per tick). Other nodes' event readers then hear of new events up to this much later.
 */
export const EVENTS_ONLY_DELAY_MS = 20;

/**
 * Collects what is published during one tick and hands the reduced batch to `send` on the next (setImmediate),
 * or, while the batch holds only `events`, EVENTS_ONLY_DELAY_MS after the first of them.
 */
export class Coalescer {
  readonly #batch = new SignalBatch();
  readonly #send: (signals: BusSignal[]) => void;
  readonly #eventsDelayMs: number;
  #nextTick: NodeJS.Immediate | null = null;
  #delayed: NodeJS.Timeout | null = null;

  constructor(send: (signals: BusSignal[]) => void, eventsDelayMs = EVENTS_ONLY_DELAY_MS) {
    this.#send = send;
    this.#eventsDelayMs = eventsDelayMs;
  }

  add(signal: BusSignal): void {
    this.#batch.add(signal);
    if (this.#nextTick !== null) return;
    if (signal.channel === "events" && this.#eventsDelayMs > 0) {
      this.#delayed ??= setTimeout(() => this.#flush(), this.#eventsDelayMs);
      return;
    }
    this.#nextTick = setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#cancelTimers();
    const signals = this.#batch.drain();
    if (signals.length > 0) this.#send(signals);
  }

  #cancelTimers(): void {
    if (this.#nextTick !== null) clearImmediate(this.#nextTick);
    if (this.#delayed !== null) clearTimeout(this.#delayed);
    this.#nextTick = null;
    this.#delayed = null;
  }

  /** Takes what is pending now, without waiting for the tick (used by close()). */
  takePending(): BusSignal[] {
    this.#cancelTimers();
    return this.#batch.drain();
  }
}

export type Encoded = { payloads: string[]; dropped: BusSignal[] };

/** Encodes signals under `origin`, splitting them so that no payload exceeds `maxBytes` (UTF-8). */
export function encodeSignals(origin: string, signals: readonly BusSignal[], maxBytes: number): Encoded {
  const head = JSON.stringify(origin);
  const payloads: string[] = [];
  const dropped: BusSignal[] = [];
  let parts: string[] = [];
  let bytes = 0;
  const close = () => {
    if (parts.length > 0) payloads.push(`[${head},${parts.join(",")}]`);
    parts = [];
    bytes = 0;
  };
  const empty = Buffer.byteLength(head) + 2;
  for (const signal of signals) {
    const part = JSON.stringify(toWire(signal));
    const size = Buffer.byteLength(part) + 1;
    if (empty + size > maxBytes) {
      dropped.push(signal);
      continue;
    }
    if (empty + bytes + size > maxBytes) close();
    parts.push(part);
    bytes += size;
  }
  close();
  return { payloads, dropped };
}

export type Decoded = { origin: string; signals: BusSignal[] };

/** Reads a payload; null when it is not one of ours. Unknown or malformed entries are skipped, not fatal. */
export function decodeSignals(payload: string): Decoded | null {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return null;
  }
  if (!Array.isArray(value) || typeof value[0] !== "string") return null;
  const signals: BusSignal[] = [];
  for (const entry of value.slice(1)) {
    const signal = fromWire(entry);
    if (signal !== null) signals.push(signal);
  }
  return { origin: value[0], signals };
}

/**
 * Encoder and echo filter for one bus instance: everything it sends carries its origin, and `receive` drops what
 * came back from itself (a LISTEN connection hears its own NOTIFYs, a fanout queue gets its own messages).
 */
export class SignalCodec {
  readonly origin: string;
  readonly maxBytes: number;

  constructor(origin: string, maxBytes: number) {
    this.origin = origin;
    this.maxBytes = maxBytes;
  }

  encode(signals: readonly BusSignal[]): Encoded {
    return encodeSignals(this.origin, signals, this.maxBytes);
  }

  /** The signals another node sent; [] for our own echoes; null for a payload that is not a bus message. */
  receive(payload: string): BusSignal[] | null {
    const decoded = decodeSignals(payload);
    if (decoded === null) return null;
    return decoded.origin === this.origin ? [] : decoded.signals;
  }
}

function toWire(signal: BusSignal): WireEntry {
  switch (signal.channel) {
    case "events":
      return ["e"];
    case "wake":
      return ["w", signal.message.queue];
    case "cancel":
      return ["c", signal.message.id];
    case "scheduled":
      return ["s", signal.message.at];
  }
}

function fromWire(entry: unknown): BusSignal | null {
  if (!Array.isArray(entry)) return null;
  const [tag, value] = entry as unknown[];
  if (tag === "e") return { channel: "events", message: {} };
  if (tag === "w" && typeof value === "string") return { channel: "wake", message: { queue: value } };
  if (tag === "c" && Number.isSafeInteger(value)) return { channel: "cancel", message: { id: value as number } };
  if (tag === "s" && Number.isFinite(value)) return { channel: "scheduled", message: { at: value as number } };
  return null;
}
