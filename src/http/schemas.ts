/**
 * JSON Schemas of the HTTP API: request bodies, query strings and path params (validated by Fastify's
 * Ajv) and responses (serialised by fast-json-stringify, which also turns the Task's Dates into ISO
 * strings). The limits come from core/task-input.ts so the API and the library never disagree; the
 * library's own check (normalizeTaskInput) still runs after these. @fastify/swagger builds
 * /api/openapi.json from the same objects, and the shared ones below become its `components.schemas`.
 */
import { ERROR_CODES } from "../core/errors.ts";
import { TASK_EVENT_TYPES } from "../core/task.ts";
import { TASK_STATES } from "../core/states.ts";
import { MAX_ATTEMPTS, MAX_DURATION_MS, MAX_KEY_LENGTH, MAX_PRIORITY, NAME_PATTERN } from "../core/task-input.ts";

export const MAX_BULK_TASKS = 1000;
export const MAX_LIST_LIMIT = 500;
export const MAX_EVENT_LIMIT = 1000;
export const MAX_WAIT_SECONDS = 60;

const name = { type: "string", pattern: NAME_PATTERN.source } as const;
const dateTime = { type: "string", format: "date-time" } as const;
const nullableDateTime = { type: ["string", "null"], format: "date-time" } as const;
const duration = (minimum: number) => ({ type: ["integer", "null"], minimum, maximum: MAX_DURATION_MS }) as const;
const ref = (id: string) => ({ $ref: `${id}#` }) as const;

// ---- shared schemas, registered once with app.addSchema --------------------------------------------------

const taskInput = {
  $id: "TaskInput",
  type: "object",
  description: "A task to add. Give at most one of runAt and delay; omitted fields take the type's defaults.",
  required: ["type"],
  additionalProperties: false,
  properties: {
    type: { ...name, description: "The handler's name." },
    data: { description: "Any JSON, handed to the handler." },
    queue: name,
    priority: { type: "integer", minimum: -MAX_PRIORITY, maximum: MAX_PRIORITY, description: "Higher runs first." },
    maxAttempts: { type: "integer", minimum: 1, maximum: MAX_ATTEMPTS },
    runAt: { ...dateTime, description: "When to run, with a time zone (RFC 3339)." },
    delay: { type: "integer", minimum: 0, maximum: MAX_DURATION_MS, description: "Milliseconds from now." },
    key: {
      type: ["string", "null"],
      minLength: 1,
      maxLength: MAX_KEY_LENGTH,
      description: "Uniqueness key among active tasks.",
    },
    timeoutMs: duration(1),
    backoffMs: duration(0),
  },
} as const;

const errorRecord = {
  type: "object",
  additionalProperties: true,
  properties: {
    name: { type: "string" },
    message: { type: "string" },
    stack: { type: "string" },
    attempt: { type: "integer" },
    at: { type: "string" },
  },
} as const;

const task = {
  $id: "Task",
  type: "object",
  required: [
    "id",
    "queue",
    "type",
    "data",
    "priority",
    "state",
    "attempt",
    "maxAttempts",
    "stalls",
    "runAt",
    "key",
    "progress",
    "result",
    "error",
    "errors",
    "timeoutMs",
    "backoffMs",
    "node",
    "createdAt",
    "startedAt",
    "finishedAt",
  ],
  properties: {
    id: { type: "integer", minimum: 1 },
    queue: { type: "string" },
    type: { type: "string" },
    data: {},
    priority: { type: "integer" },
    state: { type: "string", enum: TASK_STATES },
    attempt: { type: "integer" },
    maxAttempts: { type: "integer" },
    stalls: { type: "integer" },
    runAt: dateTime,
    key: { type: ["string", "null"] },
    progress: { type: ["object", "null"], properties: { percent: { type: "number" }, info: {} } },
    result: {},
    error: { anyOf: [errorRecord, { type: "null" }] },
    errors: { type: "array", items: errorRecord },
    timeoutMs: { type: ["integer", "null"] },
    backoffMs: { type: ["integer", "null"] },
    node: { type: ["string", "null"] },
    createdAt: dateTime,
    startedAt: nullableDateTime,
    finishedAt: nullableDateTime,
  },
} as const;

const taskEvent = {
  $id: "TaskEvent",
  type: "object",
  required: ["offset", "type", "taskId", "queue", "data", "at"],
  properties: {
    offset: { type: "integer" },
    type: { type: "string", enum: TASK_EVENT_TYPES },
    taskId: { type: "integer" },
    queue: { type: "string" },
    data: {},
    at: dateTime,
  },
} as const;

const stateCounts = {
  type: "object",
  required: TASK_STATES,
  properties: Object.fromEntries(TASK_STATES.map((state) => [state, { type: "integer" }])),
} as const;

const queueStats = {
  $id: "QueueStats",
  type: "object",
  required: ["queue", "paused", "concurrency", "counts"],
  properties: {
    queue: { type: "string" },
    paused: { type: "boolean" },
    concurrency: {
      type: ["integer", "null"],
      description: "Tasks of this queue each node runs at once, set cluster-wide; null: each node's own setting.",
    },
    counts: stateCounts,
  },
} as const;

const nodeRecord = {
  $id: "NodeRecord",
  type: "object",
  required: ["id", "name", "host", "pid", "version", "roles", "startedAt", "heartbeatAt", "info"],
  properties: {
    id: { type: "string" },
    name: { type: "string" },
    host: { type: "string" },
    pid: { type: "integer" },
    version: { type: "string" },
    roles: { type: "array", items: { type: "string" } },
    startedAt: dateTime,
    heartbeatAt: dateTime,
    heartbeatAgeMs: { type: "integer", description: "Milliseconds since the node's last heartbeat." },
    alive: { type: "boolean", description: "Whether the node heartbeated within deadAfterBeats heartbeats." },
    leader: { type: "boolean", description: "Whether the node holds the leader lease." },
    info: { description: "The node's own report: supervision tree, queues and concurrency." },
  },
} as const;

const errorResponse = {
  $id: "ErrorResponse",
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: { type: "string", enum: Object.keys(ERROR_CODES), description: "Stable; listed in docs/errors.md." },
        message: { type: "string" },
        details: { description: "Offending fields (validation), or the task concerned (conflicts, outcomes)." },
      },
    },
  },
} as const;

const scheduleInput = {
  $id: "ScheduleInput",
  type: "object",
  description: "On every tick of `cron`, the leader enqueues one task of `type` with `data`, once cluster-wide.",
  required: ["cron", "type"],
  additionalProperties: false,
  properties: {
    cron: {
      type: "string",
      minLength: 1,
      maxLength: 200,
      description: "5 fields (minute precision) or 6 (seconds first).",
    },
    timezone: { type: ["string", "null"], maxLength: 100, description: "IANA time zone; UTC when null." },
    type: name,
    data: { description: "Any JSON, handed to each task." },
    queue: name,
    priority: { type: "integer", minimum: -MAX_PRIORITY, maximum: MAX_PRIORITY },
    maxAttempts: { type: "integer", minimum: 1, maximum: MAX_ATTEMPTS },
    timeoutMs: duration(1),
    enabled: { type: "boolean" },
  },
} as const;

const schedule = {
  $id: "Schedule",
  type: "object",
  required: [
    "name",
    "cron",
    "timezone",
    "type",
    "data",
    "options",
    "enabled",
    "lastTick",
    "nextRun",
    "createdAt",
    "updatedAt",
  ],
  properties: {
    name: { type: "string" },
    cron: { type: "string" },
    timezone: { type: ["string", "null"] },
    type: { type: "string" },
    data: {},
    options: { type: "object", additionalProperties: true },
    enabled: { type: "boolean" },
    lastTick: nullableDateTime,
    nextRun: nullableDateTime,
    createdAt: dateTime,
    updatedAt: dateTime,
  },
} as const;

const position = {
  $id: "Position",
  type: "object",
  description:
    "The event-log position this answer is consistent with, captured before the read: subscribe to the live stream since it and miss nothing (docs/live-protocol.md).",
  required: ["epoch", "offset"],
  properties: { epoch: { type: "string" }, offset: { type: "integer", minimum: 0 } },
} as const;

export const SHARED_SCHEMAS = [
  position,
  taskInput,
  task,
  taskEvent,
  queueStats,
  nodeRecord,
  errorResponse,
  scheduleInput,
  schedule,
];

// ---- request parts -----------------------------------------------------------------------------------

/** Ids are positive safe integers: anything else in the path is a malformed request (400), not a miss. */
export const taskIdParams = {
  type: "object",
  required: ["id"],
  additionalProperties: false,
  properties: { id: { type: "integer", minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: "Task id." } },
} as const;

export const queueNameParams = {
  type: "object",
  required: ["name"],
  additionalProperties: false,
  properties: { name: { ...name, description: "Queue name; an unknown one is created (paused or not)." } },
} as const;

export const scheduleNameParams = {
  type: "object",
  required: ["name"],
  additionalProperties: false,
  properties: { name: { ...name, description: "Schedule name." } },
} as const;

export const scheduleBody = ref("ScheduleInput");
export const scheduleReply = {
  type: "object",
  required: ["schedule"],
  properties: { schedule: ref("Schedule") },
} as const;
export const schedulesReply = {
  type: "object",
  required: ["schedules"],
  properties: { schedules: { type: "array", items: ref("Schedule") } },
} as const;

const wait = {
  type: "integer",
  minimum: 0,
  maximum: MAX_WAIT_SECONDS,
  default: 0,
  description: "Seconds to wait for the task to finish.",
} as const;

export const waitQuery = { type: "object", additionalProperties: false, properties: { wait } } as const;

export const listQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    queue: name,
    state: {
      type: "array",
      items: { type: "string", enum: TASK_STATES },
      description: "States to include: comma-separated, or the parameter repeated.",
    },
    type: name,
    key: { type: "string", minLength: 1, maxLength: MAX_KEY_LENGTH },
    createdAfter: { type: "string", format: "date-time", description: "Only tasks created at or after this time." },
    createdBefore: { type: "string", format: "date-time", description: "Only tasks created before this time." },
    after: {
      type: "integer",
      minimum: 1,
      maximum: Number.MAX_SAFE_INTEGER,
      description: "nextCursor of the previous page.",
    },
    limit: { type: "integer", minimum: 1, maximum: MAX_LIST_LIMIT, default: 50 },
    order: { type: "string", enum: ["asc", "desc"], default: "desc", description: "By id." },
  },
} as const;

export const eventsQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    after: {
      type: "integer",
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      default: 0,
      description: "Offset already seen.",
    },
    limit: { type: "integer", minimum: 1, maximum: MAX_EVENT_LIMIT, default: 100 },
  },
} as const;

export const bulkBody = {
  type: "object",
  required: ["tasks"],
  additionalProperties: false,
  properties: { tasks: { type: "array", minItems: 1, maxItems: MAX_BULK_TASKS, items: ref("TaskInput") } },
} as const;

export const taskInputBody = ref("TaskInput");

// ---- responses ---------------------------------------------------------------------------------------

export const errorReplies = { "4xx": ref("ErrorResponse"), "5xx": ref("ErrorResponse") } as const;

export const taskReply = { type: "object", required: ["task"], properties: { task: ref("Task") } } as const;

/** A read's reply with the log position it is consistent with. */
function withPosition<T extends { required: readonly string[]; properties: object }>(reply: T) {
  return {
    ...reply,
    required: [...reply.required, "position"],
    properties: { ...reply.properties, position: ref("Position") },
  } as const;
}

export const taskReadReply = withPosition(taskReply);

export const taskListReply = withPosition({
  type: "object",
  required: ["tasks", "nextCursor"],
  properties: {
    tasks: { type: "array", items: ref("Task") },
    nextCursor: {
      type: ["integer", "null"],
      description:
        "Where the next page starts (pass it as `after`); null at the end. A list filtered by queue, type, time or the states most tasks are in reads at most 20,000 ids per request, so its page may be short, even empty, while nextCursor is not null.",
    },
  },
} as const);

export const bulkReply = {
  type: "object",
  required: ["tasks", "created"],
  properties: {
    tasks: { type: "array", items: ref("Task") },
    created: {
      type: "array",
      items: { type: "boolean" },
      description: "Per item: false when its key was already held.",
    },
  },
} as const;

export const resultReply = {
  type: "object",
  required: ["state", "result"],
  properties: { state: { type: "string", enum: ["completed"] }, result: {} },
} as const;

export const eventsReply = {
  type: "object",
  required: ["events"],
  properties: { events: { type: "array", items: ref("TaskEvent") } },
} as const;

export const queuesReply = withPosition({
  type: "object",
  required: ["queues"],
  properties: { queues: { type: "array", items: ref("QueueStats") } },
} as const);

export const queueReply = { type: "object", required: ["queue"], properties: { queue: ref("QueueStats") } } as const;

export const nodesReply = withPosition({
  type: "object",
  required: ["leader", "nodes"],
  properties: {
    leader: { type: ["string", "null"], description: "Id of the node holding the leader lease, if any." },
    nodes: { type: "array", items: ref("NodeRecord") },
  },
} as const);

export const nodeReply = {
  type: "object",
  required: ["id", "name", "version", "state", "driver", "tree", "faultInjection"],
  properties: {
    id: { type: "string" },
    name: { type: "string" },
    version: { type: "string" },
    state: { type: "string" },
    driver: { type: "string" },
    tree: { description: "This node's supervision tree." },
    faultInjection: { type: "boolean", description: "Whether this node allows failure injection (POST /api/faults)." },
  },
} as const;

export const healthReply = {
  type: "object",
  required: ["status", "state", "store"],
  properties: {
    status: { type: "string", enum: ["ok", "ko"], description: "Postoffice's words: ok, or ko (then 503)." },
    node: { type: "string" },
    state: { type: "string", description: "The node's lifecycle state; healthy only when running." },
    store: {
      type: "object",
      required: ["ok", "driver"],
      properties: { ok: { type: "boolean" }, driver: { type: "string" }, error: { type: "string" } },
    },
    bus: { type: "object", properties: { ok: { type: "boolean" } } },
  },
} as const;

// ---- the dashboard's operations ----------------------------------------------------------------------

export const statsQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    window: { type: "integer", minimum: 60, maximum: 3600, default: 900, description: "Seconds back from now." },
  },
} as const;

const percentiles = {
  type: ["object", "null"],
  required: ["p50", "p95", "p99"],
  properties: { p50: { type: "number" }, p95: { type: "number" }, p99: { type: "number" } },
  description: "Milliseconds, as the upper bound of a histogram bucket (core/stats.ts); null when nothing was timed.",
} as const;

export const statsReply = withPosition({
  type: "object",
  required: ["bucketSeconds", "buckets"],
  properties: {
    bucketSeconds: { type: "integer" },
    buckets: {
      type: "array",
      items: {
        type: "object",
        required: ["at", "completed", "failed", "retried", "runMs", "waitMs"],
        properties: {
          at: { type: "string", format: "date-time" },
          completed: { type: "integer" },
          failed: { type: "integer" },
          retried: { type: "integer" },
          runMs: percentiles,
          waitMs: percentiles,
        },
      },
    },
  },
} as const);

export const concurrencyBody = {
  type: "object",
  additionalProperties: false,
  required: ["concurrency"],
  properties: {
    concurrency: {
      type: ["integer", "null"],
      minimum: 0,
      maximum: 1000,
      description: "Tasks of the queue each node runs at once; null: each node's own setting.",
    },
  },
} as const;

export const actionsBody = {
  type: "object",
  additionalProperties: false,
  required: ["action"],
  properties: {
    action: { type: "string", enum: ["cancel", "rerun", "delete"] },
    ids: {
      type: "array",
      minItems: 1,
      maxItems: 1000,
      items: { type: "integer", minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    },
    filter: {
      type: "object",
      additionalProperties: false,
      properties: {
        queue: name,
        state: { type: "array", minItems: 1, items: { type: "string", enum: TASK_STATES } },
        type: name,
        key: { type: "string", minLength: 1, maxLength: MAX_KEY_LENGTH },
        createdAfter: { type: "string", format: "date-time" },
        createdBefore: { type: "string", format: "date-time" },
      },
    },
  },
  oneOf: [{ required: ["ids"] }, { required: ["filter"] }],
} as const;

export const actionsReply = {
  type: "object",
  required: ["done", "skipped"],
  properties: {
    done: { type: "array", items: { type: "integer" } },
    skipped: {
      type: "array",
      items: {
        type: "object",
        required: ["id", "reason"],
        properties: { id: { type: "integer" }, reason: { type: "string" } },
      },
    },
  },
} as const;

export const faultBody = {
  type: "object",
  required: ["kind"],
  properties: {
    kind: { type: "string", enum: ["crash-service", "fail-next"] },
    service: { type: "string", minLength: 1, maxLength: 200 },
    type: name,
    count: { type: "integer", minimum: 1, maximum: 100 },
  },
  additionalProperties: false,
} as const;

export const whoamiReply = {
  type: "object",
  required: ["scope", "tokens"],
  properties: {
    scope: {
      type: "string",
      enum: ["none", "read", "write", "admin"],
      description:
        "Which token was given: none, read, write or admin. Without an admin token set, write may do admin's things.",
    },
    tokens: {
      type: "object",
      required: ["read", "write"],
      properties: {
        read: { type: "boolean", description: "Whether reads need a token." },
        write: { type: "boolean", description: "Whether writes need a token." },
        admin: {
          type: "boolean",
          description: "Whether fault injection, deletions and concurrency changes need the admin token.",
        },
      },
    },
  },
} as const;
