/**
 * What happens on a node, as typed events (Graphile Worker's WorkerEventMap is the model): `conveyor.events.on(
 * "task:completed", ({ task }) => ...)`. Tests wait on them instead of reading logs; the log and the live stream
 * are listeners like any other. Each event is emitted on the node where it happened: a task's on the node that ran
 * it (or, for a rescue, on the leader that rescued it; for a cancel, on the node asked to cancel), a service's on
 * its own node, a membership change on every node that watches the store.
 *
 * Listeners run synchronously inside the emitter: keep them short, and never throw (a throwing listener is logged
 * and ignored, so that an observer can never break the node it observes).
 */
import { EventEmitter } from "node:events";
import type { ErrorRecord } from "../core/errors.ts";
import type { TaskState } from "../core/states.ts";
import type { Json, Task } from "../core/task.ts";
import type { NodeRecord } from "../store/store.ts";

/** How an attempt that was stopped (cancel, timeout, shutdown) ended on the node that ran it. */
export type StoppedHow = "returned" | "threw" | "terminated" | "abandoned";

export type NodeEventMap = {
  /** This node started an attempt (claimed, or started by its own insert). `task` is as it started. */
  "task:started": [{ task: Task }];
  /** An attempt this node ran completed; `task` is as it started. */
  "task:completed": [{ task: Task; result: Json }];
  /** An attempt this node ran failed, and the task will run again at `runAt`. */
  "task:retried": [{ task: Task; error: ErrorRecord; runAt: Date }];
  /** An attempt this node ran failed for good (no attempts left, or an UnrecoverableError). */
  "task:failed": [{ task: Task; error: ErrorRecord }];
  /** This node (the leader) found the task running on a dead node: queued again, or failed past its stalls. */
  "task:rescued": [{ task: Task; outcome: "retried" | "failed"; from: string | null }];
  /** This node cancelled the task in the store (conveyor.cancel); a running one is then stopped where it runs. */
  "task:cancelled": [{ task: Task; previousState: TaskState; reason: string }];
  /**
   * An attempt running on this node was stopped (its signal fired) and has now ended: its handler returned or
   * threw after the signal, or its thread was terminated, or it was abandoned, after the grace period.
   */
  "task:stopped": [{ task: Task; reason: "cancelled" | "timeout" | "shutdown" | "fenced"; how: StoppedHow }];
  /** A service of this node crashed; its supervisor restarts it after a backoff. */
  "service:crashed": [{ supervisor: string; service: string; error: unknown }];
  "service:restarted": [{ supervisor: string; service: string }];
  /** A supervisor spent its restart budget and gave up: the node is unhealthy. */
  "service:gave-up": [{ supervisor: string; service: string | null; error: unknown }];
  "leader:gained": [{ node: string }];
  "leader:lost": [{ node: string }];
  /** A node appeared in the store, or beats again after a silence (the watcher's first look reports none). */
  "node:joined": [{ node: NodeRecord }];
  /** A node left the store: it stopped (its row is gone) or went silent for the dead time. */
  "node:left": [{ node: NodeRecord; reason: "stopped" | "silent" }];
  /**
   * This node's heartbeat has not reached the store for the dead time minus the fence margin: it stopped claiming
   * and stopped the attempts it ran (`tasks`, reason "fenced"), which the leader is about to hand to other nodes.
   */
  "node:fenced": [{ node: string; silentMs: number; tasks: number[] }];
  /**
   * A heartbeat reached the store again and the attempts this node abandoned were handed back (`released`: those
   * still on it; the others were rescued meanwhile): it claims again, `fencedMs` after it fenced.
   */
  "node:unfenced": [{ node: string; fencedMs: number; released: number[] }];
  /** The bus connected (at start) or connected again after a loss. */
  "bus:connected": [{ reconnect: boolean; downMs: number }];
  "bus:lost": [{ error: unknown }];
};

export type NodeEventName = keyof NodeEventMap;

export class NodeEvents extends EventEmitter<NodeEventMap> {
  readonly #onListenerError: (event: string, error: unknown) => void;

  constructor(onListenerError: (event: string, error: unknown) => void) {
    super({ captureRejections: false });
    this.#onListenerError = onListenerError;
  }

  /** Emits to every listener; one that throws is reported and the others still run. */
  override emit<E extends NodeEventName>(event: E, ...args: NodeEventMap[E]): boolean {
    if (this.listenerCount(event) === 0) return false; // the usual case, on every task: no array made
    const listeners = this.listeners(event) as ((...a: NodeEventMap[E]) => void)[];
    for (const listener of listeners) {
      try {
        listener(...args);
      } catch (error) {
        this.#onListenerError(event, error);
      }
    }
    return listeners.length > 0;
  }

  /** The next `event` that satisfies `match`, or a rejection after `timeoutMs`: what tests wait on. */
  next<E extends NodeEventName>(
    event: E,
    match: (...args: NodeEventMap[E]) => boolean = () => true,
    timeoutMs = 30_000,
  ): Promise<NodeEventMap[E][0]> {
    return new Promise((resolve, reject) => {
      const listener = (...args: NodeEventMap[E]) => {
        if (!match(...args)) return;
        clearTimeout(timer);
        this.off(event, listener as never);
        resolve(args[0]);
      };
      const timer = setTimeout(() => {
        this.off(event, listener as never);
        reject(new Error(`no ${event} event within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.on(event, listener as never);
    });
  }
}
