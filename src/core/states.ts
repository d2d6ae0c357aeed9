/**
 * The task state machine. This table is the single source of truth for which state changes exist;
 * docs/states.md draws it, and states.test.ts checks the drawing against it. The store drivers' TypeScript asks it
 * (canTransition) where it needs a list of states; their SQL cannot import it, so it spells the lists out and says
 * next to each which list of this file it is.
 *
 *   scheduled ──promote──▶ queued ──claim──▶ running ──complete──▶ completed
 *       ▲                    ▲                 │ │ │
 *       │                    └─rescue/release──┘ │ ├──fail (final)──▶ failed
 *       └────────────── retry (backoff) ─────────┘ └──cancel─────────▶ cancelled
 *   (cancel also from scheduled and queued; rerun takes failed or cancelled back to queued)
 */

export const TASK_STATES = ["scheduled", "queued", "running", "completed", "failed", "cancelled"] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** States a task can still leave; a uniqueness key is held only while the task is in one of them. */
export const ACTIVE_STATES: readonly TaskState[] = ["scheduled", "queued", "running"];
/** States a task ends in. `retry` (by a person) can move failed and cancelled tasks back to queued. */
export const FINAL_STATES: readonly TaskState[] = ["completed", "failed", "cancelled"];

/** Every transition, named by the operation that causes it. */
export const TRANSITIONS = {
  promote: { from: ["scheduled"], to: "queued" },
  claim: { from: ["queued"], to: "running" },
  complete: { from: ["running"], to: "completed" },
  fail: { from: ["running"], to: "failed" },
  retry: { from: ["running"], to: "scheduled" },
  cancel: { from: ["scheduled", "queued", "running"], to: "cancelled" },
  /** A node died under the task: it goes back to the queue, counting a stall. */
  rescue: { from: ["running"], to: "queued" },
  /** A node shutting down hands its unfinished task back; the attempt does not count. */
  release: { from: ["running"], to: "queued" },
  rerun: { from: ["failed", "cancelled"], to: "queued" },
} as const satisfies Record<string, { from: readonly TaskState[]; to: TaskState }>;

export type TransitionName = keyof typeof TRANSITIONS;

/** A count of zero for every state, in TASK_STATES order: the shape of QueueStats.counts. */
export function emptyCounts(): Record<TaskState, number> {
  return Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>;
}

export function isTaskState(value: unknown): value is TaskState {
  return typeof value === "string" && (TASK_STATES as readonly string[]).includes(value);
}

export function isFinalState(state: TaskState): boolean {
  return FINAL_STATES.includes(state);
}

/** Whether `transition` may start from `state`. */
export function canTransition(transition: TransitionName, state: TaskState): boolean {
  return (TRANSITIONS[transition].from as readonly TaskState[]).includes(state);
}
