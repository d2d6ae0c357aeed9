/**
 * /api/queues: counts per state, and pause/resume. Pausing a queue no task has used yet is allowed: it is
 * paused before its first task arrives (the store keeps the flag per queue name).
 */
import type { FastifyInstance } from "fastify";
import type { Conveyor } from "../../runtime/conveyor.ts";
import { emptyCounts } from "../../core/states.ts";
import type { QueueStats } from "../../store/store.ts";
import { errorReplies, queueNameParams, queueReply, queuesReply } from "../schemas.ts";

const tags = ["queues"];

type NameRoute = { Params: { name: string } };

export function registerQueueRoutes(app: FastifyInstance, { conveyor }: { conveyor: Conveyor }): void {
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

/** The queue's stats; a queue the store has no row or task for yet is empty and in the state just set. */
async function statsOf(conveyor: Conveyor, queue: string, paused: boolean): Promise<QueueStats> {
  const stats = (await conveyor.queues()).find((q) => q.queue === queue);
  if (stats !== undefined) return stats;
  return { queue, paused, concurrency: null, counts: emptyCounts() };
}
