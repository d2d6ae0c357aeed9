/**
 * /api/schedules: cron schedules, created or replaced by name with PUT (idempotent), listed with their
 * next run, deleted by name.
 */
import type { FastifyInstance } from "fastify";
import { NotFoundError } from "../../core/errors.ts";
import type { ScheduleSpec } from "../../core/schedule-input.ts";
import type { Conveyor } from "../../runtime/conveyor.ts";
import { errorReplies, scheduleBody, scheduleNameParams, scheduleReply, schedulesReply } from "../schemas.ts";

const tags = ["schedules"];

type NameRoute = { Params: { name: string } };

export function registerScheduleRoutes(app: FastifyInstance, { conveyor }: { conveyor: Conveyor }): void {
  app.get(
    "/api/schedules",
    {
      schema: {
        summary: "Cron schedules with their last and next tick",
        tags,
        response: { 200: schedulesReply, ...errorReplies },
      },
    },
    async () => ({ schedules: await conveyor.schedules() }),
  );

  app.get<NameRoute>(
    "/api/schedules/:name",
    {
      schema: {
        summary: "One schedule",
        tags,
        params: scheduleNameParams,
        response: { 200: scheduleReply, ...errorReplies },
      },
    },
    async (request) => {
      const found = (await conveyor.schedules()).find((s) => s.name === request.params.name);
      if (found === undefined) throw new NotFoundError("not_found", `schedule ${request.params.name} does not exist`);
      return { schedule: found };
    },
  );

  app.put<NameRoute & { Body: ScheduleSpec }>(
    "/api/schedules/:name",
    {
      schema: {
        summary: "Create or replace a schedule; its last fired tick is kept",
        tags,
        params: scheduleNameParams,
        body: scheduleBody,
        response: { 200: scheduleReply, ...errorReplies },
      },
    },
    async (request) => ({ schedule: await conveyor.schedule(request.params.name, request.body) }),
  );

  app.delete<NameRoute>(
    "/api/schedules/:name",
    {
      schema: {
        summary: "Delete a schedule",
        tags,
        params: scheduleNameParams,
        response: { 204: { type: "null" }, ...errorReplies },
      },
    },
    async (request, reply) => {
      if (!(await conveyor.unschedule(request.params.name)))
        throw new NotFoundError("not_found", `schedule ${request.params.name} does not exist`);
      return reply.code(204).send();
    },
  );
}
