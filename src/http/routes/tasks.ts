/**
 * /api/tasks: add (one or in bulk), list, look, wait, stop, retry, and a task's events.
 *
 * A key held by an active task makes POST /api/tasks a 409 duplicate_key carrying that task, never a
 * second one; bulk reports it per item in `created` instead. Ids in paths must be positive safe integers
 * (else 400 validation_failed); a well-formed id that names nothing is 404 task_not_found.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import { ConflictError, ConveyorError, NotFoundError, ValidationError } from "../../core/errors.ts";
import type { TaskState } from "../../core/states.ts";
import { normalizeTaskInput } from "../../core/task-input.ts";
import type { Json, Task, TaskInput } from "../../core/task.ts";
import type { Conveyor } from "../../runtime/conveyor.ts";
import type { BulkAction } from "../../runtime/bulk.ts";
import {
  actionsBody,
  actionsReply,
  bulkBody,
  bulkReply,
  errorReplies,
  eventsQuery,
  eventsReply,
  listQuery,
  resultReply,
  taskIdParams,
  taskInputBody,
  taskListReply,
  taskReadReply,
  taskReply,
  waitQuery,
} from "../schemas.ts";

export type TaskInputBody = {
  type: string;
  data?: Json;
  queue?: string;
  priority?: number;
  maxAttempts?: number;
  runAt?: string;
  delay?: number;
  key?: string | null;
  timeoutMs?: number | null;
  backoffMs?: number | null;
};

type IdParams = { Params: { id: number } };
type WaitRoute = IdParams & { Querystring: { wait: number } };
type ListRoute = {
  Querystring: {
    queue?: string;
    state?: TaskState[];
    type?: string;
    key?: string;
    createdAfter?: string;
    createdBefore?: string;
    after?: number;
    limit: number;
    order: "asc" | "desc";
  };
};

type ActionsRoute = {
  Body: {
    action: BulkAction;
    ids?: number[];
    filter?: {
      queue?: string;
      state?: TaskState[];
      type?: string;
      key?: string;
      createdAfter?: string;
      createdBefore?: string;
    };
  };
};

export type RouteContext = { conveyor: Conveyor; closing: AbortSignal };

const tags = ["tasks"];

export function registerTaskRoutes(app: FastifyInstance, { conveyor, closing }: RouteContext): void {
  app.post<{ Body: TaskInputBody }>(
    "/api/tasks",
    {
      schema: { summary: "Add a task", tags, body: taskInputBody, response: { 201: taskReply, ...errorReplies } },
    },
    async (request, reply) => {
      const input = checkInputs([request.body], () => "")[0]!;
      const [outcome] = await conveyor.enqueueMany([input]);
      if (!outcome!.created) {
        throw new ConflictError("duplicate_key", `active task ${outcome!.task.id} already holds key ${input.key}`, {
          task: outcome!.task,
        });
      }
      return reply.code(201).send({ task: outcome!.task });
    },
  );

  app.post<{ Body: { tasks: TaskInputBody[] } }>(
    "/api/tasks/bulk",
    {
      schema: {
        summary: "Add up to 1000 tasks in one transaction: all or none",
        description:
          "An item whose key is held by an active task is not added again: its `created` is false and the existing task is returned in its place.",
        tags,
        body: bulkBody,
        response: { 201: bulkReply, ...errorReplies },
      },
    },
    async (request, reply) => {
      const inputs = checkInputs(request.body.tasks, (index) => `tasks.${index}.`);
      const outcomes = await conveyor.enqueueMany(inputs);
      return reply.code(201).send({ tasks: outcomes.map((o) => o.task), created: outcomes.map((o) => o.created) });
    },
  );

  app.get<ListRoute>(
    "/api/tasks",
    {
      schema: {
        summary: "List tasks, newest first by default, a page at a time",
        tags,
        querystring: listQuery,
        response: { 200: taskListReply, ...errorReplies },
      },
    },
    async (request) => {
      const { queue, state, type, key, after, limit, order } = request.query;
      const states = state === undefined ? undefined : [...new Set(state)];
      const createdAfter = dateOf(request.query.createdAfter, "createdAfter");
      const createdBefore = dateOf(request.query.createdBefore, "createdBefore");
      const position = await conveyor.live.position();
      const page = await conveyor.list({ queue, states, type, key, createdAfter, createdBefore, after, limit, order });
      return { ...page, position };
    },
  );

  app.get<WaitRoute>(
    "/api/tasks/:id",
    {
      schema: {
        summary: "Get a task, optionally waiting up to `wait` seconds for it to finish",
        tags,
        params: taskIdParams,
        querystring: waitQuery,
        response: { 200: taskReadReply, ...errorReplies },
      },
    },
    async (request, reply) => {
      const position = await conveyor.live.position();
      const task = await waitForTask(conveyor, request.params.id, request.query.wait, () =>
        abortSignalOf(reply, closing),
      );
      return { task: found(task, request.params.id), position };
    },
  );

  app.get<WaitRoute>(
    "/api/tasks/:id/result",
    {
      schema: {
        summary: "Get a task's result, waiting up to `wait` seconds for it",
        description:
          "409 task_failed or task_cancelled when it ended without one; 408 wait_timeout when it is still unfinished after the wait (ask again).",
        tags,
        params: taskIdParams,
        querystring: waitQuery,
        response: { 200: resultReply, ...errorReplies },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const task = found(await waitForTask(conveyor, id, request.query.wait, () => abortSignalOf(reply, closing)), id);
      if (task.state === "completed") return { state: task.state, result: task.result };
      const reason = task.error?.message ?? "no reason given";
      if (task.state === "failed") throw outcomeError("task_failed", `task ${id} failed: ${reason}`, task);
      if (task.state === "cancelled") throw outcomeError("task_cancelled", `task ${id} was cancelled: ${reason}`, task);
      throw outcomeError("wait_timeout", `task ${id} is still ${task.state} after ${request.query.wait} s`, task);
    },
  );

  app.delete<IdParams>(
    "/api/tasks/:id",
    {
      schema: {
        summary: "Stop a task: cancel it if waiting, signal and end it if running",
        description: "A task that already finished is returned unchanged; its state says which.",
        tags,
        params: taskIdParams,
        response: { 200: taskReply, ...errorReplies },
      },
    },
    async (request) => ({ task: await conveyor.cancel(request.params.id) }),
  );

  // /retry is the old path of /rerun: kept, so that clients written against it go on working.
  for (const [path, deprecated] of [
    ["/api/tasks/:id/rerun", false],
    ["/api/tasks/:id/retry", true],
  ] as const) {
    app.post<IdParams>(
      path,
      {
        schema: {
          summary: deprecated
            ? "Old name of POST /api/tasks/{id}/rerun"
            : "Run a failed or cancelled task again from its first attempt",
          tags,
          deprecated,
          params: taskIdParams,
          response: { 200: taskReply, ...errorReplies },
        },
      },
      async (request) => ({ task: await conveyor.rerun(request.params.id) }),
    );
  }

  app.post<ActionsRoute>(
    "/api/tasks/actions",
    {
      schema: {
        summary:
          "Cancel, rerun or delete many tasks: the listed ids at once (200), or every task matching a filter in the background (202: a conveyor.bulk task)",
        tags,
        body: actionsBody,
        response: { 200: actionsReply, 202: taskReply, ...errorReplies },
      },
    },
    async (request, reply) => {
      const { action, ids, filter } = request.body;
      if (ids !== undefined) return conveyor.bulk(action, [...new Set(ids)]);
      const { state, ...rest } = filter ?? {};
      const task = await conveyor.bulkMatching(action, { ...rest, ...(state === undefined ? {} : { states: state }) });
      return reply.code(202).send({ task });
    },
  );

  app.get<IdParams & { Querystring: { after: number; limit: number } }>(
    "/api/tasks/:id/events",
    {
      schema: {
        summary: "A task's transitions, oldest first (its progress reports are on the task and in the event log)",
        tags,
        params: taskIdParams,
        querystring: eventsQuery,
        response: { 200: eventsReply, ...errorReplies },
      },
    },
    async (request) => {
      const { id } = request.params;
      found(await conveyor.get(id), id);
      return { events: await conveyor.taskEvents(id, request.query) };
    },
  );
}

/**
 * JSON → TaskInput, checked item by item with the library's own rules so that a bad item in a bulk
 * request is named by its index; the real defaults are applied later by enqueueMany.
 */
function checkInputs(bodies: TaskInputBody[], prefix: (index: number) => string): TaskInput[] {
  const placeholder = { queue: "default", priority: 0, maxAttempts: 1, timeoutMs: null };
  const now = new Date();
  return bodies.map((body, index) => {
    const input: TaskInput = { ...body, runAt: body.runAt === undefined ? undefined : new Date(body.runAt) };
    try {
      normalizeTaskInput(input, () => placeholder, now);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      const problems = (error.details as { field: string; message: string }[]).map((p) => ({
        in: "body",
        field: prefix(index) + p.field,
        message: p.message,
      }));
      throw new ValidationError(problems.map((p) => `${p.field} ${p.message}`).join("; "), problems);
    }
    return input;
  });
}

function found(task: Task | null, id: number): Task {
  if (task === null) throw new NotFoundError("task_not_found", `task ${id} does not exist`);
  return task;
}

function outcomeError(
  code: "task_failed" | "task_cancelled" | "wait_timeout",
  message: string,
  task: Task,
): ConveyorError {
  return new ConveyorError(code, message, { details: { state: task.state, error: task.error, task } });
}

/** Aborts when the client goes away before its answer, or the server starts closing. */
function abortSignalOf(reply: FastifyReply, closing: AbortSignal): AbortSignal {
  const gone = new AbortController();
  reply.raw.once("close", () => gone.abort());
  return AbortSignal.any([gone.signal, closing]);
}

/**
 * The task now (wait 0), or once it finishes, or as it is when the wait runs out or the signal fires.
 * Waiting uses the node's event feed (conveyor.waitForFinish), never a poll of the store.
 */
async function waitForTask(
  conveyor: Conveyor,
  id: number,
  seconds: number,
  signalOf: () => AbortSignal,
): Promise<Task | null> {
  if (seconds === 0) return conveyor.get(id);
  return conveyor.waitForFinish(id, seconds * 1000, signalOf());
}

/** A date-time query value (the schema checked its form) as a Date; a 400 when it names no real time. */
function dateOf(text: string | undefined, field: string): Date | undefined {
  if (text === undefined) return undefined;
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) {
    throw new ValidationError(`querystring.${field} is not a time`, [
      { in: "querystring", field, message: "is not a time" },
    ]);
  }
  return date;
}
