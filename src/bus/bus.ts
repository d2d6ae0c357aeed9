/**
 * The bus carries small signals between the parts of a node and, in a cluster, between nodes: a doorbell,
 * never the data itself (the store is the truth; a lost signal only costs the time until the next poll).
 */

export type BusMessages = {
  /** Tasks became claimable in this queue. */
  wake: { queue: string };
  /** Stop this task if you run it. */
  cancel: { id: number };
  /** New events are in the event log. */
  events: Record<string, never>;
  /** A scheduled task is due at `at` (epoch ms): the scheduler may need to wake earlier. */
  scheduled: { at: number };
};

export type BusChannel = keyof BusMessages;

export interface Bus {
  /** Connect (a no-op for the in-process bus). The node calls it in start(). */
  start(): Promise<void>;
  publish<C extends BusChannel>(channel: C, message: BusMessages[C]): void;
  subscribe<C extends BusChannel>(channel: C, listener: (message: BusMessages[C]) => void): () => void;
  /** Buses that connect to a server call `listener` after each reconnection: signals may have been lost. */
  onReconnect?(listener: (info: { attempts: number; downMs: number }) => void): () => void;
  /** Buses that connect to a server call `listener` when the connection is lost (they reconnect by themselves). */
  onDisconnect?(listener: (error: unknown) => void): () => void;
  close(): Promise<void>;
}
