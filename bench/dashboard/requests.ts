/**
 * The requests the dashboard's overview, tasks and task pages make, timed on the server (Fastify's elapsed time,
 * from the request's arrival to its reply's end) and as a round trip on loopback.
 */
import Fastify from "fastify";
import { type Conveyor, conveyorRoutes } from "../../src/index.ts";
import { percentiles } from "../lib/harness.ts";
import { BACKLOG_QUEUE } from "./seed.ts";

export type RequestTiming = {
  page: string;
  name: string;
  path: string;
  /** Rows the answer carried (for lists), to tell an empty answer from a fast one. */
  rows: number | null;
  server: { p50: number; p95: number; max: number };
  roundTrip: { p50: number; p95: number };
};

type Probe = { page: string; name: string; path: string };

/** Serves the node's routes on loopback with a clock on each request. */
export async function timedServer(conveyor: Conveyor) {
  const app = Fastify({ routerOptions: { maxParamLength: 256 } });
  let lastElapsed = 0;
  app.addHook("onResponse", async (_request, reply) => {
    lastElapsed = reply.elapsedTime;
  });
  await app.register(conveyorRoutes, { conveyor });
  const address = await app.listen({ host: "127.0.0.1", port: 0 });
  return { app, url: address, lastElapsed: () => lastElapsed };
}

/** What each page asks for, with ids and cursors found in this store. */
async function probes(url: string, seededAt: Date): Promise<Probe[]> {
  const first = (await (await fetch(`${url}/api/tasks?limit=100`)).json()) as {
    tasks: { id: number }[];
    nextCursor: number | null;
  };
  const failed = (await (await fetch(`${url}/api/tasks?state=failed&limit=1`)).json()) as {
    tasks: { id: number; key: string | null }[];
  };
  const keyed = (await (await fetch(`${url}/api/tasks?limit=100`)).json()) as { tasks: { key: string | null }[] };
  const key = keyed.tasks.find((t) => t.key !== null)?.key ?? "k-3";
  const failedId = failed.tasks[0]?.id ?? first.tasks[0]!.id;
  const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
  // An old window: the first 10 seconds of the seeding, far from the newest rows the list starts at.
  const oldFrom = seededAt.toISOString();
  const oldTo = new Date(seededAt.getTime() + 10_000).toISOString();
  return [
    { page: "overview", name: "stats, 15 minutes", path: "/api/stats?window=900" },
    { page: "overview", name: "queues and counts", path: "/api/queues" },
    { page: "overview", name: "nodes", path: "/api/nodes" },
    { page: "overview", name: "latest failures", path: "/api/tasks?state=failed&limit=10" },
    { page: "tasks", name: "newest 100", path: "/api/tasks?limit=100" },
    { page: "tasks", name: "next page (cursor)", path: `/api/tasks?limit=100&after=${first.nextCursor}` },
    { page: "tasks", name: "state=running (none)", path: "/api/tasks?state=running&limit=100" },
    { page: "tasks", name: "state=failed (1%)", path: "/api/tasks?state=failed&limit=100" },
    { page: "tasks", name: "state=queued (backlog)", path: "/api/tasks?state=queued&limit=100" },
    { page: "tasks", name: "queue=reports", path: "/api/tasks?queue=reports&limit=100" },
    {
      page: "tasks",
      name: `queue=${BACKLOG_QUEUE}, oldest first`,
      path: `/api/tasks?queue=${BACKLOG_QUEUE}&order=asc&limit=100`,
    },
    { page: "tasks", name: "type=webhook.call", path: "/api/tasks?type=webhook.call&limit=100" },
    { page: "tasks", name: "type with no task", path: "/api/tasks?type=never.used&limit=100" },
    { page: "tasks", name: "key (exact)", path: `/api/tasks?key=${encodeURIComponent(key)}&limit=100` },
    { page: "tasks", name: "last hour", path: `/api/tasks?createdAfter=${hourAgo}&limit=100` },
    {
      page: "tasks",
      name: "an old 10 s window",
      path: `/api/tasks?createdAfter=${oldFrom}&createdBefore=${oldTo}&limit=100`,
    },
    { page: "tasks", name: "failed in queue emails", path: "/api/tasks?state=failed&queue=emails&limit=100" },
    { page: "task", name: "one task", path: `/api/tasks/${failedId}` },
    { page: "task", name: "its events", path: `/api/tasks/${failedId}/events` },
  ];
}

/** Times each probe `samples` times (after a few unrecorded warm-ups), one request at a time. */
export async function timeRequests(
  server: Awaited<ReturnType<typeof timedServer>>,
  seededAt: Date,
  samples: number,
): Promise<RequestTiming[]> {
  const timings: RequestTiming[] = [];
  for (const probe of await probes(server.url, seededAt)) {
    const serverMs: number[] = [];
    const roundTripMs: number[] = [];
    let rows: number | null = null;
    for (let i = -5; i < samples; i++) {
      const t0 = performance.now();
      const response = await fetch(server.url + probe.path);
      const body = (await response.json()) as { tasks?: unknown[]; events?: unknown[] };
      const t1 = performance.now();
      if (!response.ok) throw new Error(`${probe.path}: ${response.status} ${JSON.stringify(body)}`);
      if (i < 0) continue;
      rows = (body.tasks ?? body.events)?.length ?? null;
      roundTripMs.push(t1 - t0);
      serverMs.push(server.lastElapsed());
    }
    const s = percentiles(serverMs);
    const r = percentiles(roundTripMs);
    timings.push({
      ...probe,
      rows,
      server: { p50: s.p50, p95: percentile(serverMs, 0.95), max: s.max },
      roundTrip: { p50: r.p50, p95: percentile(roundTripMs, 0.95) },
    });
  }
  return timings;
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const value = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
  return Math.round(value * 100) / 100;
}
