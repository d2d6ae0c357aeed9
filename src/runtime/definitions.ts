/**
 * Task types known to this node: the registry `conveyor.define()` fills, with every option resolved.
 */
import { DEFAULT_BACKOFF, type BackoffOptions } from "../core/backoff.ts";
import { ConfigError } from "../core/errors.ts";
import { MAX_ATTEMPTS, MAX_DURATION_MS, MAX_PRIORITY, NAME_PATTERN, type TaskDefaults } from "../core/task-input.ts";
import type { Isolation, TaskHandler, TaskTypeOptions, ThreadHandlerRef } from "./handler.ts";

export type Definition = {
  type: string;
  /** Set for inline handlers. */
  handler: TaskHandler | null;
  /** Set for thread handlers. */
  threadRef: ThreadHandlerRef | null;
  isolation: Isolation;
  queue: string;
  priority: number;
  maxAttempts: number;
  timeoutMs: number | null;
  backoff: BackoffOptions;
  graceMs: number;
  singleton: boolean;
};

export const DEFAULT_TYPE_OPTIONS = {
  queue: "default",
  priority: 0,
  maxAttempts: 3,
  timeoutMs: null,
  graceMs: 5000,
} as const;

export class Definitions {
  readonly #byType = new Map<string, Definition>();

  define(type: string, handler: TaskHandler | ThreadHandlerRef | URL, options: TaskTypeOptions = {}): Definition {
    if (!NAME_PATTERN.test(type)) throw new ConfigError(`task type "${type}" must match ${NAME_PATTERN.source}`);
    const queue = options.queue ?? DEFAULT_TYPE_OPTIONS.queue;
    if (!NAME_PATTERN.test(queue))
      throw new ConfigError(`queue "${queue}" of ${type} must match ${NAME_PATTERN.source}`);
    const threadRef = handler instanceof URL ? { module: handler } : typeof handler === "function" ? null : handler;
    const isolation = options.isolation ?? (threadRef === null ? "inline" : "thread");
    if (isolation === "thread" && threadRef === null) {
      throw new ConfigError(`${type}: isolation "thread" needs a module URL ({ module, export }), not a function`);
    }
    if (isolation === "inline" && threadRef !== null) {
      throw new ConfigError(`${type}: a module handler runs with isolation "thread"`);
    }
    const definition: Definition = {
      type,
      handler: typeof handler === "function" ? handler : null,
      threadRef,
      isolation,
      queue,
      priority: options.priority ?? DEFAULT_TYPE_OPTIONS.priority,
      maxAttempts: options.maxAttempts ?? DEFAULT_TYPE_OPTIONS.maxAttempts,
      timeoutMs: options.timeoutMs ?? DEFAULT_TYPE_OPTIONS.timeoutMs,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      graceMs: options.graceMs ?? DEFAULT_TYPE_OPTIONS.graceMs,
      singleton: options.singleton ?? false,
    };
    checkDefinition(definition);
    this.#byType.set(type, definition);
    return definition;
  }

  get(type: string): Definition | undefined {
    return this.#byType.get(type);
  }

  /** Defaults for enqueueing `type`; a type this node does not know gets the global defaults. */
  defaultsFor(type: string): TaskDefaults {
    const definition = this.#byType.get(type);
    return definition ?? DEFAULT_TYPE_OPTIONS;
  }

  /** Queue name → the types this node handles in it. */
  byQueue(): Map<string, string[]> {
    const queues = new Map<string, string[]>();
    for (const definition of this.#byType.values()) {
      const types = queues.get(definition.queue) ?? [];
      types.push(definition.type);
      queues.set(definition.queue, types);
    }
    return queues;
  }

  all(): Definition[] {
    return [...this.#byType.values()];
  }
}

/** Bad options fail at define(), naming the option, rather than misbehaving at the first task. */
function checkDefinition(d: Definition): void {
  const integerIn = (value: unknown, min: number, max: number) =>
    Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max;
  const problems: string[] = [];
  if (!integerIn(d.priority, -MAX_PRIORITY, MAX_PRIORITY))
    problems.push(`priority must be an integer within ±${MAX_PRIORITY}`);
  if (!integerIn(d.maxAttempts, 1, MAX_ATTEMPTS))
    problems.push(`maxAttempts must be an integer from 1 to ${MAX_ATTEMPTS}`);
  if (d.timeoutMs !== null && !integerIn(d.timeoutMs, 1, MAX_DURATION_MS))
    problems.push("timeoutMs must be null or a positive integer (ms, up to a year)");
  if (!integerIn(d.graceMs, 0, MAX_DURATION_MS)) problems.push("graceMs must be an integer >= 0 (ms)");
  if (!integerIn(d.backoff.baseMs, 0, MAX_DURATION_MS)) problems.push("backoff.baseMs must be an integer >= 0 (ms)");
  if (!integerIn(d.backoff.maxMs, d.backoff.baseMs, MAX_DURATION_MS))
    problems.push("backoff.maxMs must be an integer >= backoff.baseMs (ms)");
  if (typeof d.backoff.jitter !== "number" || !(d.backoff.jitter >= 0 && d.backoff.jitter <= 1))
    problems.push("backoff.jitter must be a number from 0 to 1");
  if (d.isolation !== "inline" && d.isolation !== "thread") problems.push(`isolation must be "inline" or "thread"`);
  if (problems.length > 0) throw new ConfigError(`task type ${d.type}: ${problems.join("; ")}`);
}
