/**
 * POST /api/faults: failure injection on the node that receives it (crash a service; fail the next attempts of a
 * task type), for demos and drills. Refused with 403 fault_injection_disabled unless the node allows it.
 */
import type { FastifyInstance } from "fastify";
import type { Conveyor } from "../../runtime/conveyor.ts";
import { parseFault } from "../../runtime/faults.ts";
import { errorReplies, faultBody } from "../schemas.ts";

export function registerFaultRoutes(app: FastifyInstance, { conveyor }: { conveyor: Conveyor }): void {
  app.post(
    "/api/faults",
    {
      schema: {
        summary: "Inject a failure on this node: crash a service, or fail the next attempts of a task type",
        tags: ["node"],
        body: faultBody,
        response: { 200: { type: "object", properties: { ok: { type: "boolean" } } }, ...errorReplies },
      },
    },
    async (request) => {
      conveyor.injectFault(parseFault(request.body));
      return { ok: true };
    },
  );
}
