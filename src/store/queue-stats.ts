/**
 * Builds the QueueStats list from the two things every store can read: task counts per (queue, state) and the
 * queues' settings (pause flag, concurrency). Shared by the drivers, so both report the same shape: all six states, zeros included,
 * and paused queues that have no task yet.
 */
import { emptyCounts, type TaskState } from "../core/states.ts";
import type { QueueStats } from "./store.ts";

export function assembleQueueStats(
  counts: Iterable<{ queue: string; state: string; count: number }>,
  flags: Iterable<{ queue: string; paused: boolean; concurrency: number | null }>,
): QueueStats[] {
  const stats = new Map<string, QueueStats>();
  const entry = (queue: string) => {
    let found = stats.get(queue);
    if (found === undefined) {
      found = { queue, paused: false, concurrency: null, counts: emptyCounts() };
      stats.set(queue, found);
    }
    return found;
  };
  for (const { queue, state, count } of counts) entry(queue).counts[state as TaskState] = count;
  for (const { queue, paused, concurrency } of flags) Object.assign(entry(queue), { paused, concurrency });
  return [...stats.values()].sort((a, b) => a.queue.localeCompare(b.queue));
}
