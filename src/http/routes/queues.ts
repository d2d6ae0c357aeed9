/**
 * /api/queues: counts per state, pause/resume, and the concurrency each node runs a queue at (set live). Pausing a queue no task has used yet is allowed: it is
 * paused before its first task arrives (the store keeps the flag per queue name).
 */
import type { FastifyInstance } from "fastify";
import type { Conveyor } from "../../runtime/conveyor.ts";
import { emptyCounts } from "../../core/states.ts";
import type { QueueStats } from "../../store/store.ts";
import { concurrencyBody, errorReplies, queueNameParams, queueReply, queuesReply } from "../schemas.ts";

const tags = ["queues"];

type NameRoute = { Params: { name: string } };

export function registerQueueRoutes(app: FastifyInstance, { conveyor }: { conveyor: Conveyor }): void {
  registerConcurrencyRoute(app, conveyor);
  app.get(
    "/api/queues",
    {
      schema: {
        summary: "Queues with their task counts per state and whether they are paused",
        tags,
        response: { 200: queuesReply, ...errorReplies },
      },
    },
    async () => {
      const position = await conveyor.live.position();
      return { queues: await conveyor.queues(), position };
    },
  );

  app.post<NameRoute>(
    "/api/queues/:name/pause",
    {
      schema: {
        summary: "Pause a queue: its tasks stay queued and no node claims them until it is resumed",
        tags,
        params: queueNameParams,
        response: { 200: queueReply, ...errorReplies },
      },
    },
    async (request) => {
      await conveyor.pauseQueue(request.params.name);
      return { queue: await statsOf(conveyor, request.params.name, true) };
    },
  );

  app.post<NameRoute>(
    "/api/queues/:name/resume",
    {
      schema: {
        summary: "Resume a paused queue",
        tags,
        params: queueNameParams,
        response: { 200: queueReply, ...errorReplies },
      },
    },
    async (request) => {
      await conveyor.resumeQueue(request.params.name);
      return { queue: await statsOf(conveyor, request.params.name, false) };
    },
  );
}

/** Registers PUT /api/queues/:name/concurrency (called from registerQueueRoutes). */
function registerConcurrencyRoute(app: FastifyInstance, conveyor: Conveyor): void {
  app.put<NameRoute & { Body: { concurrency: number | null } }>(
    "/api/queues/:name/concurrency",
    {
      schema: {
        summary: "Set how many tasks of the queue each node runs at once (null: each node's own); applied live",
        tags,
        params: queueNameParams,
        body: concurrencyBody,
        response: { 200: queueReply, ...errorReplies },
      },
    },
    async (request) => {
      await conveyor.setQueueConcurrency(request.params.name, request.body.concurrency);
      const stats = await statsOf(conveyor, request.params.name, false);
      return { queue: { ...stats, concurrency: request.body.concurrency } };
    },
  );
}

/** The queue's stats; a queue the store has no row or task for yet is empty and in the state just set. */
async function statsOf(conveyor: Conveyor, queue: string, paused: boolean): Promise<QueueStats> {
  const stats = (await conveyor.queues()).find((q) => q.queue === queue);
  if (stats !== undefined) return stats;
  return { queue, paused, concurrency: null, counts: emptyCounts() };
}
