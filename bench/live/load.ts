/**
 * A load generator of the live bench, in a process of its own: it opens its share of the clients (each on one
 * channel, spread over both servers), counts what each receives, and reports per client; and it plays the
 * catch-up client that goes away, misses events, and comes back with its last position.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type ClientReport, ConveyorClient, type LiveClient, type Position, SocketIoClient, Tally } from "./clients.ts";
import { childArgs, serve } from "./ipc.ts";
import { processStats } from "./node-stats.ts";
import { epochMs, type Histogram, histogram } from "./stats.ts";

export type System = "conveyor" | "socket.io";
export type LoadArgs = { system: System; index: number };
/** A client: where it connects (`node`: that server's index) and the channel it follows. */
export type ClientSpec = { url: string; node: number; channel: string };

/**
 * What the clients received: every client's tally, and the latencies of the application channels' events, apart
 * for those published on the client's own server (`sameServer`) and on the other one (`otherServer`), and those of
 * the `tasks` channel.
 */
export type LoadReport = { clients: ClientReport[]; sameServer: Histogram; otherServer: Histogram; tasks: Histogram };

export type CatchUp = {
  /** From the reconnect to the last of the missed events (null when they never all came). */
  seconds: number | null;
  /** From the reconnect to `subscribed` (joined). */
  subscribedMs: number;
  report: ClientReport;
};

/** Connections opened at once while the clients connect: a burst of 2,000 handshakes would be its own test. */
const CONNECT_CONCURRENCY = 50;

const args = childArgs<LoadArgs>();

await serve(async () => {
  const clients: LiveClient[] = [];
  const sameServer = histogram();
  const otherServer = histogram();
  const tasks = histogram();
  let away: { client: LiveClient; channel: string } | null = null;

  const open = (spec: ClientSpec, tally: Tally, since: Position | null): LiveClient =>
    args.system === "conveyor" ? new ConveyorClient(spec.url, tally, since) : new SocketIoClient(spec.url, tally);

  return {
    ready: { pid: process.pid },
    handlers: {
      ...processStats(),
      connect: async ({ clients: specs, since }: { clients: ClientSpec[]; since: Position | null }) => {
        const fresh = specs.map((spec) => {
          const tally =
            spec.channel === "tasks"
              ? new Tally(spec.channel, tasks)
              : new Tally(spec.channel, otherServer, { node: spec.node, latency: sameServer });
          return open(spec, tally, since);
        });
        clients.push(...fresh);
        await inBatches(fresh, CONNECT_CONCURRENCY, (client) => client.connect());
        return clients.length;
      },
      totals: () => clients.reduce((sum, client) => sum + client.tally.received, 0),
      report: (): LoadReport => ({ clients: clients.map((c) => c.tally.report()), sameServer, otherServer, tasks }),
      closeAll: () => {
        for (const client of clients) client.close();
      },
      awayConnect: async (spec: ClientSpec) => {
        const client = open(spec, new Tally(spec.channel, histogram()), null);
        await client.connect();
        away = { client, channel: spec.channel };
      },
      /** Waits until the away client has seen `events`, then closes it: it is away from here on. */
      awayLeave: async ({ events }: { events: number }) => {
        const { client } = away!;
        await waitFor(() => client.tally.distinct >= events, 10_000, "the catch-up client's first events");
        client.close();
        return client instanceof ConveyorClient ? client.position : null;
      },
      back: ({ url, count, since, waitMs }: { url: string; count: number; since: Position | null; waitMs: number }) =>
        comeBack(
          open({ url, node: -1, channel: away!.channel }, new Tally(away!.channel, histogram()), since),
          count,
          waitMs,
        ),
    },
    cleanup: async () => {
      for (const client of clients) client.close();
    },
  };
});

/** Reconnects the catch-up client and times it until `count` missed events have come (or `waitMs` passes). */
async function comeBack(client: LiveClient, count: number, waitMs: number): Promise<CatchUp> {
  const started = epochMs();
  await client.connect();
  const subscribedMs = epochMs() - started;
  const all = await waitFor(() => client.tally.distinct >= count, waitMs, "").then(
    () => true,
    () => false,
  );
  client.close();
  return {
    seconds: all ? (client.tally.lastAt - started) / 1000 : null,
    subscribedMs: Math.round(subscribedMs * 10) / 10,
    report: client.tally.report(),
  };
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: size }, worker));
}
