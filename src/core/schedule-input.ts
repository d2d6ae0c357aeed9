/**
 * Checks a schedule at the library's edge (code or HTTP): its name, cron expression, time zone, task type
 * and the options of the tasks it will enqueue.
 */
import { Cron } from "croner";
import { ValidationError } from "./errors.ts";
import { isJson, NAME_PATTERN, normalizeTaskInput } from "./task-input.ts";
import type { Json } from "./task.ts";

export type ScheduleSpec = {
  cron: string;
  type: string;
  data?: Json;
  timezone?: string | null;
  queue?: string;
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number | null;
  enabled?: boolean;
};

export type NormalizedSchedule = {
  name: string;
  cron: string;
  timezone: string | null;
  type: string;
  data: Json;
  options: { queue?: string; priority?: number; maxAttempts?: number; timeoutMs?: number | null };
  enabled: boolean;
};

export function normalizeSchedule(name: string, spec: ScheduleSpec): NormalizedSchedule {
  const problems: { field: string; message: string }[] = [];
  if (typeof name !== "string" || !NAME_PATTERN.test(name))
    problems.push({ field: "name", message: `must match ${NAME_PATTERN.source}` });
  const timezone = spec.timezone ?? null;
  if (timezone !== null && !isTimeZone(timezone))
    problems.push({ field: "timezone", message: "must be an IANA time zone such as Europe/Paris" });
  if (typeof spec.cron !== "string" || !isCron(spec.cron))
    problems.push({ field: "cron", message: "must be a cron expression of 5 or 6 fields" });
  const data = spec.data ?? null;
  if (!isJson(data)) problems.push({ field: "data", message: "must be JSON" });
  const options: NormalizedSchedule["options"] = {};
  if (spec.queue !== undefined) options.queue = spec.queue;
  if (spec.priority !== undefined) options.priority = spec.priority;
  if (spec.maxAttempts !== undefined) options.maxAttempts = spec.maxAttempts;
  if (spec.timeoutMs !== undefined) options.timeoutMs = spec.timeoutMs;
  try {
    // The tasks it will enqueue must pass the same checks as any other task; defaults do not matter here.
    normalizeTaskInput(
      { type: spec.type, ...options },
      () => ({ queue: "default", priority: 0, maxAttempts: 1, timeoutMs: null }),
      new Date(),
    );
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    problems.push(...(error.details as { field: string; message: string }[]));
  }
  if (spec.enabled !== undefined && typeof spec.enabled !== "boolean")
    problems.push({ field: "enabled", message: "must be a boolean" });
  if (problems.length > 0)
    throw new ValidationError(problems.map((p) => `${p.field} ${p.message}`).join("; "), problems);
  return { name, cron: spec.cron, timezone, type: spec.type, data, options, enabled: spec.enabled ?? true };
}

function isCron(expression: string): boolean {
  try {
    const fields = expression.trim().split(/\s+/).length;
    return (fields === 5 || fields === 6) && new Cron(expression, { paused: true }).nextRun() !== null;
  } catch {
    return false;
  }
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return typeof zone === "string" && zone.length > 0;
  } catch {
    return false;
  }
}
