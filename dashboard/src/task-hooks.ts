/**
 * One task, live: its snapshot (GET /api/tasks/:id and its position), then `task:<id>` from that position, each
 * event applied to the row and added to its timeline; an ending (completed, failed, cancelled) reloads the row for
 * what events do not carry (the result, the error's stack).
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { api } from "./api.ts";
import { type LiveEvent, useLive, useThrottle } from "./live.tsx";
import { applyEvent, ENDED, type LiveTask, recordProgress } from "./tasks-live.ts";
import type { TaskEvent } from "./types.ts";

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
  const [live, setLive] = useState<{ base: unknown; task: LiveTask | null; events: TaskEvent[] }>({
    base: null,
    task: null,
    events: [],
  });
  const base = snapshot.data;
  // A new snapshot replaces what the stream had patched, keeping the events it brought.
  let current = live;
  if (base !== undefined && live.base !== base) {
    current = { base, task: { ...base.task, at: base.position.offset }, events: live.events };
    setLive(current);
  }
  const reload = useThrottle(() => void queryClient.invalidateQueries({ queryKey: ["task", id] }), 300);
  useLive(base === undefined ? null : [`task:${id}`], {
    since: base?.position ?? null,
    onEvents: (events: LiveEvent[]) => {
      for (const event of events) recordProgress(event);
      setLive((state) => {
        let task = state.task;
        for (const event of events) if (task !== null) task = applyEvent(task, event);
        const known = new Set(state.events.map((e) => e.offset));
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
        return { ...state, task, events: added.length === 0 ? state.events : [...state.events, ...added] };
      });
      if (events.some((e) => ENDED.has(e.name) || e.name === "task.rerun")) reload();
    },
    onReload: reload,
  });
  const events = useMemo(() => {
    const all = new Map<number, TaskEvent>();
    for (const event of past.data?.events ?? []) all.set(event.offset, event);
    for (const event of current.events) all.set(event.offset, event);
    return [...all.values()].sort((a, b) => a.offset - b.offset);
  }, [past.data, current.events]);
  return { task: current.task, events, snapshot, history: past, reload };
}
