/**
 * GET /api/stats: the cluster's task throughput and timings per 5-second bucket over the last minutes (every node's
 * buckets merged); live updates come on the `stats` channel of the live stream.
 */
import type { FastifyInstance } from "fastify";
import type { Conveyor } from "../../runtime/conveyor.ts";
import { errorReplies, statsQuery, statsReply } from "../schemas.ts";

export function registerStatsRoutes(app: FastifyInstance, { conveyor }: { conveyor: Conveyor }): void {
  app.get<{ Querystring: { window: number } }>(
    "/api/stats",
    {
      schema: {
        summary: "Completed, failed and retried attempts, and run and wait time percentiles, per 5-second bucket",
        tags: ["node"],
        querystring: statsQuery,
        response: { 200: statsReply, ...errorReplies },
      },
    },
    async (request) => {
      const position = await conveyor.live.position();
      return { ...(await conveyor.stats(request.query.window)), position };
    },
  );
}
