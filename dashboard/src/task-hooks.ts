/**
 * One task, live: its snapshot (GET /api/tasks/:id and its position), then `task:<id>` from that position, each
 * event applied to the row and added to its timeline; an ending (completed, failed, cancelled) reloads the row for
 * what events do not carry (the result, the error's stack).
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useRef, useState } from "react";
import { api } from "./api.ts";
import { type LiveEvent, useLive, useThrottle } from "./live.tsx";
import { applyEvent, ENDED, type LiveTask, recordProgress } from "./tasks-live.ts";
import type { TaskEvent } from "./types.ts";

const MAX_PROGRESS_EVENTS = 200;

export function useTask(id: number, { history = false }: { history?: boolean } = {}) {
  const queryClient = useQueryClient();
  const snapshot = useQuery({
    queryKey: ["task", id],
    queryFn: () => api.task(id),
    enabled: Number.isSafeInteger(id) && id > 0,
    retry: false,
  });
  const past = useQuery({
    queryKey: ["task-events", id],
    queryFn: () => api.taskEvents(id),
    enabled: history && snapshot.isSuccess,
  });
  // The stream's view of the task (applied over the latest snapshot) and the events it brought; a new snapshot
  // wins over patches older than it (applyEvent compares offsets), and never drops an event.
  const [patched, setPatched] = useState<LiveTask | null>(null);
  const [streamed, setStreamed] = useState<TaskEvent[]>([]);
  const base = snapshot.data;
  const baseTask = useMemo<LiveTask | null>(
    () => (base === undefined ? null : { ...base.task, at: base.position.offset }),
    [base],
  );
  const latestBase = useRef(baseTask);
  latestBase.current = baseTask;
  const task = patched !== null && (baseTask === null || patched.at > baseTask.at) ? patched : baseTask;
  const reload = useThrottle(() => void queryClient.invalidateQueries({ queryKey: ["task", id] }), 300);
  useLive(base === undefined ? null : [`task:${id}`], {
    since: base?.position ?? null,
    onEvents: (events: LiveEvent[]) => {
      for (const event of events) recordProgress(event);
      setPatched((previous) => {
        const start = latestBase.current;
        let next = previous !== null && (start === null || previous.at > start.at) ? previous : start;
        for (const event of events) if (next !== null) next = applyEvent(next, event);
        return next;
      });
      setStreamed((previous) => {
        const known = new Set(previous.map((e) => e.offset));
        const added = events
          .filter((e) => !known.has(e.offset))
          .map((e) => ({
            offset: e.offset,
            type: e.name,
            taskId: e.taskId ?? id,
            queue: e.queue ?? "",
            data: (e.data ?? null) as Record<string, unknown> | null,
            at: e.at,
          }));
        if (added.length === 0) return previous;
        const all = [...previous, ...added];
        // A long task reports progress for hours: keep its transitions, and only its latest progress reports.
        const progress = all.filter((e) => e.type === "task.progress");
        if (progress.length <= MAX_PROGRESS_EVENTS) return all;
        const drop = new Set(progress.slice(0, progress.length - MAX_PROGRESS_EVENTS));
        return all.filter((e) => !drop.has(e));
      });
      if (events.some((e) => ENDED.has(e.name) || e.name === "task.rerun")) reload();
    },
    onReload: reload,
  });
  const events = useMemo(() => {
    const all = new Map<number, TaskEvent>();
    for (const event of past.data?.events ?? []) all.set(event.offset, event);
    for (const event of streamed) all.set(event.offset, event);
    return [...all.values()].sort((a, b) => a.offset - b.offset);
  }, [past.data, streamed]);
  return { task, events, snapshot, history: past, reload };
}
