/**
 * Task types known to this node: the registry `conveyor.define()` fills, with every option resolved.
 */
import { DEFAULT_BACKOFF, type BackoffOptions } from "../core/backoff.ts";
import { ConfigError } from "../core/errors.ts";
import { NAME_PATTERN, type TaskDefaults } from "../core/task-input.ts";
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
};

export const DEFAULT_TYPE_OPTIONS = { queue: "default", priority: 0, maxAttempts: 3, timeoutMs: null, graceMs: 5000 } as const;

export class Definitions {
  readonly #byType = new Map<string, Definition>();

  define(type: string, handler: TaskHandler | ThreadHandlerRef | URL, options: TaskTypeOptions = {}): Definition {
    if (!NAME_PATTERN.test(type)) throw new ConfigError(`task type "${type}" must match ${NAME_PATTERN.source}`);
    const queue = options.queue ?? DEFAULT_TYPE_OPTIONS.queue;
    if (!NAME_PATTERN.test(queue)) throw new ConfigError(`queue "${queue}" of ${type} must match ${NAME_PATTERN.source}`);
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
    };
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
