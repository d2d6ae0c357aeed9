/**
 * One Socket.IO 4 server of the live bench, in a process of its own: `new Server(httpServer, { adapter:
 * createAdapter(pub, sub) })` with the Redis adapter (ioredis clients), WebSocket transport, everything else at its
 * defaults. A client joins a room (`join`, acknowledged) for each channel; the server emits the same load as
 * Conveyor's nodes publish, to rooms (`io.to(channel).emit("m", channel, message)`), which the adapter relays to
 * the other server through Redis PUB/SUB. It has no task runtime: for the busy `tasks` room it emits task-like
 * events at the rate Conveyor's drain produced them.
 */
import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { childArgs, serve } from "./ipc.ts";
import { processStats } from "./node-stats.ts";
import { type Message, type PublishPlan, paced, publishBurst, publishLoad } from "./publisher.ts";
import { epochMs } from "./stats.ts";

export type SocketIoNodeArgs = { redisUrl: string; key: string; index: number };

const args = childArgs<SocketIoNodeArgs>();

/** Task-like events to the `tasks` room at a steady rate (Conveyor's drain, without a drain). */
class TaskEvents {
  readonly #node: number;
  readonly #emit: (channel: string, message: Message) => void;
  #abort: AbortController | null = null;
  #running: Promise<{ sent: number }> | null = null;

  constructor(node: number, emit: (channel: string, message: Message) => void) {
    this.#node = node;
    this.#emit = emit;
  }

  start(rate: number): void {
    this.#abort = new AbortController();
    this.#running = paced(rate, { signal: this.#abort.signal }, (i) =>
      this.#emit("tasks", { n: this.#node, s: i + 1, t: epochMs() }),
    );
  }

  async stop(): Promise<{ enqueued: number; failedBatches: number; emitted: number }> {
    this.#abort?.abort();
    const { sent } = (await this.#running) ?? { sent: 0 };
    return { enqueued: 0, failedBatches: 0, emitted: sent };
  }
}

await serve(async () => {
  const pub = new Redis(args.redisUrl, { lazyConnect: true });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const http = createServer();
  const io = new Server(http, { adapter: createAdapter(pub, sub, { key: args.key }), transports: ["websocket"] });
  io.on("connection", (socket) => {
    socket.on("join", (room: unknown, ack: unknown) => {
      if (typeof room === "string") void socket.join(room);
      if (typeof ack === "function") ack();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const address = http.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  let sent = 0;
  const emit = (channel: string, message: Message) => {
    sent++;
    io.to(channel).emit("m", channel, message);
  };
  const tasks = new TaskEvents(args.index, emit);
  return {
    ready: { port, nodeId: `socket.io-${args.index}` },
    handlers: {
      ...processStats(),
      sent: () => sent,
      publish: (plan: PublishPlan) => publishLoad(plan, emit),
      burst: (a: { channel: string; count: number; concurrency: number; firstSeq: number }) =>
        publishBurst(a.count, a.concurrency, a.firstSeq, args.index, (message) => emit(a.channel, message)),
      startTasks: ({ rate }: { rate: number }) => tasks.start(rate),
      stopTasks: () => tasks.stop(),
    },
    cleanup: async () => {
      io.close();
      pub.disconnect();
      sub.disconnect();
    },
  };
});
