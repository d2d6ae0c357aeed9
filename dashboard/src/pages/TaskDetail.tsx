/**
 * One task: what it is, where it stands (live), every attempt with its node and error, its event timeline, its data
 * and result, and, when it was stopped while running, the stop's lifecycle across nodes: requested here, signalled on
 * the node that ran it, and how the attempt ended there (returned, threw, thread terminated or abandoned after the
 * grace period), from the `task.stopped` event that node writes to the `nodes` channel.
 */
import { useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "@tanstack/react-router";
import { type ReactNode, useMemo, useState } from "react";
import { ApiError, api } from "../api.ts";
import { useAuth } from "../auth.tsx";
import { useNodeName } from "../data.ts";
import { formatDuration, formatExact } from "../format.ts";
import { type LiveEvent, useLive } from "../live.tsx";
import { useTask } from "../task-hooks.ts";
import { type LiveTask, progressRate } from "../tasks-live.ts";
import type { ErrorRecord, Position, TaskEvent } from "../types.ts";
import {
  Button,
  Dialog,
  Empty,
  ErrorNote,
  Json,
  Panel,
  ProgressBar,
  StateBadge,
  Time,
  toastError,
} from "../ui/kit.tsx";

export function TaskDetail() {
  const { id: raw } = useParams({ from: "/tasks/$id" });
  const id = Number(raw);
  const { task, events, snapshot, history } = useTask(id, { history: true });
  if (!Number.isSafeInteger(id) || id <= 0) {
    return (
      <div className="page">
        <h1>Task {raw}</h1>
        <Empty>A task id is a whole number.</Empty>
      </div>
    );
  }
  if (snapshot.error instanceof ApiError && snapshot.error.status === 404) {
    return (
      <div className="page">
        <Back />
        <h1>Task #{id}</h1>
        <Empty>There is no task #{id}: it never existed, or it finished long enough ago to be deleted.</Empty>
      </div>
    );
  }
  if (task === null) {
    return (
      <div className="page">
        <Back />
        <h1>Task #{id}</h1>
        <ErrorNote error={snapshot.error} />
        {snapshot.error ? null : <div className="skeleton-block" aria-busy="true" />}
      </div>
    );
  }
  return (
    <TaskView task={task} events={events} position={snapshot.data?.position ?? null} historyError={history.error} />
  );
}

function Back() {
  return (
    <Link to="/tasks" className="back">
      ← Tasks
    </Link>
  );
}

function TaskView({
  task,
  events,
  position,
  historyError,
}: {
  task: LiveTask;
  events: TaskEvent[];
  position: Position | null;
  historyError: unknown;
}) {
  const auth = useAuth();
  const queryClient = useQueryClient();
  const [confirm, setConfirm] = useState(false);
  const [busy, setBusy] = useState(false);
  const active = task.state === "scheduled" || task.state === "queued" || task.state === "running";
  const rerunnable = task.state === "failed" || task.state === "cancelled";
  const act = async (what: () => Promise<unknown>) => {
    setBusy(true);
    try {
      await what();
      await queryClient.invalidateQueries({ queryKey: ["task", task.id] });
    } catch (error) {
      toastError(error);
    } finally {
      setBusy(false);
      setConfirm(false);
    }
  };
  const nodeName = useNodeName();
  const percent = task.progress?.percent ?? null;
  const speed = task.state === "running" && percent !== null ? progressRate(task.id, percent) : null;
  const runMs =
    task.startedAt !== null
      ? task.finishedAt === null
        ? null
        : Date.parse(task.finishedAt) - Date.parse(task.startedAt)
      : null;
  return (
    <div className="page page-task">
      <Back />
      <header className="page-head">
        <h1>
          <span className="num">#{task.id}</span> {task.type}
        </h1>
        <StateBadge state={task.deleted ? "deleted" : task.state} />
        <div className="head-actions">
          {auth.canWrite && active ? (
            <Button tone="danger" onClick={() => setConfirm(true)} disabled={busy}>
              Stop
            </Button>
          ) : null}
          {auth.canWrite && rerunnable ? (
            <Button tone="primary" onClick={() => act(() => api.rerun(task.id))} disabled={busy}>
              Rerun
            </Button>
          ) : null}
        </div>
      </header>

      {percent !== null || task.state === "running" ? (
        <Panel title="Progress" className="progress-panel">
          <ProgressBar
            percent={percent ?? 0}
            rate={speed?.rate ?? null}
            eta={speed?.eta ?? null}
            label={`Task ${task.id} progress`}
          />
          {task.progress?.info !== undefined && task.progress.info !== null ? (
            <p className="muted small mono">{JSON.stringify(task.progress.info)}</p>
          ) : null}
        </Panel>
      ) : null}

      <StopLifecycle task={task} events={events} position={position} />

      <Panel title="Details">
        <dl className="facts">
          <Fact label="Queue">
            <Link to="/tasks" search={{ queue: task.queue }}>
              {task.queue}
            </Link>
          </Fact>
          <Fact label="Priority">{task.priority}</Fact>
          <Fact label="Attempt">
            {task.attempt} of {task.maxAttempts}
            {task.stalls > 0 ? ` · ${task.stalls} stalled` : ""}
          </Fact>
          <Fact label="Node">
            <span title={task.node ?? undefined}>{nodeName(task.node) ?? "—"}</span>
          </Fact>
          <Fact label="Key">{task.key ?? "—"}</Fact>
          <Fact label="Timeout">{task.timeoutMs === null ? "none" : formatDuration(task.timeoutMs)}</Fact>
          <Fact label="Created">
            <Time at={task.createdAt} />
          </Fact>
          <Fact label={task.state === "scheduled" ? "Runs" : "Due"}>
            <Time at={task.runAt} />
          </Fact>
          <Fact label="Started">
            <Time at={task.startedAt} />
          </Fact>
          <Fact label="Finished">
            <Time at={task.finishedAt} />
          </Fact>
          <Fact label="Run time">{formatDuration(runMs)}</Fact>
          <Fact label="Waited">
            {task.startedAt === null
              ? "—"
              : formatDuration(Math.max(0, Date.parse(task.startedAt) - Date.parse(task.runAt)))}
          </Fact>
        </dl>
      </Panel>

      {task.error !== null && !active ? (
        <Panel title={task.state === "cancelled" ? "Why it ended" : "Error"}>
          <ErrorView error={task.error} />
        </Panel>
      ) : null}

      <Attempts task={task} events={events} />

      <div className="two-col">
        <Panel title="Data">
          <Json value={task.data} label="Task data" />
        </Panel>
        <Panel title="Result">
          {task.state === "completed" ? (
            <Json value={task.result} label="Task result" />
          ) : (
            <Empty>
              {task.state === "failed"
                ? "None: it failed."
                : task.state === "cancelled"
                  ? "None: it was cancelled."
                  : "Not yet."}
            </Empty>
          )}
        </Panel>
      </div>

      <Panel title="Timeline" actions={<span className="muted small">live</span>}>
        <ErrorNote error={historyError} />
        <Timeline events={events} />
      </Panel>

      <Dialog
        open={confirm}
        onClose={() => setConfirm(false)}
        title={`Stop task #${task.id}?`}
        footer={
          <>
            <Button onClick={() => setConfirm(false)}>Keep it</Button>
            <Button tone="danger" onClick={() => act(() => api.cancel(task.id))} disabled={busy}>
              Stop task
            </Button>
          </>
        }
      >
        <p>
          {task.state === "running"
            ? `It is cancelled at once in the store, and its handler's signal fires on ${nodeName(task.node) ?? "its node"}. A handler that does not return within its grace period is ended: a thread is terminated, an inline handler abandoned.`
            : "It has not started: it is cancelled at once and will not run."}
        </p>
      </Dialog>
    </div>
  );
}

function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function ErrorView({ error }: { error: ErrorRecord }) {
  return (
    <div className="error-view">
      <p>
        <strong>{error.name ?? "Error"}</strong>: {error.message}
        {error.at ? (
          <span className="muted small">
            {" "}
            · attempt {error.attempt ?? "?"} · <Time at={error.at} />
          </span>
        ) : null}
      </p>
      {error.stack ? (
        <details>
          <summary>Stack</summary>
          <pre className="stack">{error.stack}</pre>
        </details>
      ) : null}
    </div>
  );
}

type AttemptRow = {
  attempt: number;
  node: string | null;
  startedAt: string | null;
  endedAt: string | null;
  outcome: string;
  error: ErrorRecord | null;
};

function attemptsOf(task: LiveTask, events: TaskEvent[]): AttemptRow[] {
  const rows = new Map<number, AttemptRow>();
  let run = 0; // attempts restart at 1 after a rerun: key them by run too
  const key = (attempt: number) => run * 10_000 + attempt;
  let last: AttemptRow | null = null;
  for (const event of events) {
    const data = event.data ?? {};
    if (event.type === "task.rerun") run++;
    if (event.type === "task.started") {
      const attempt = typeof data.attempt === "number" ? data.attempt : 1;
      last = {
        attempt,
        node: typeof data.node === "string" ? data.node : null,
        startedAt: event.at,
        endedAt: null,
        outcome: "running",
        error: null,
      };
      rows.set(key(attempt), last);
    } else if (last !== null && last.endedAt === null) {
      const ending: Record<string, string> = {
        "task.completed": "completed",
        "task.failed": "failed",
        "task.retrying": "failed, retried",
        "task.cancelled": "stopped",
        "task.rescued": "node lost, rescued",
      };
      const outcome = ending[event.type];
      if (outcome !== undefined) {
        last.endedAt = event.at;
        last.outcome = outcome;
        if (typeof data.error === "string") last.error = { message: data.error };
      }
    }
  }
  const list = [...rows.values()];
  // The stored errors (with stacks) of the current run, by attempt.
  for (const error of task.errors ?? []) {
    const row = [...list].reverse().find((r) => r.attempt === error.attempt);
    if (row !== undefined) row.error = error;
  }
  return list;
}

function Attempts({ task, events }: { task: LiveTask; events: TaskEvent[] }) {
  const rows = attemptsOf(task, events);
  const nodeName = useNodeName();
  return (
    <Panel title={`Attempts (${rows.length})`}>
      {rows.length === 0 ? (
        <Empty>Not started yet.</Empty>
      ) : (
        <ol className="attempts">
          {rows.map((row) => (
            <li
              key={`${row.startedAt}-${row.attempt}`}
              className={`attempt outcome-${row.outcome.split(",")[0]!.replace(/\W+/g, "-")}`}
            >
              <div className="attempt-head">
                <strong>Attempt {row.attempt}</strong>
                <span title={row.node ?? undefined}>on {nodeName(row.node) ?? "?"}</span>
                <span className="muted small">
                  <Time at={row.startedAt} />
                  {row.endedAt !== null && row.startedAt !== null
                    ? ` · ${formatDuration(Date.parse(row.endedAt) - Date.parse(row.startedAt))}`
                    : ""}
                </span>
                <span className="badge tone-neutral">{row.outcome}</span>
              </div>
              {row.error !== null ? <ErrorView error={row.error} /> : null}
            </li>
          ))}
        </ol>
      )}
    </Panel>
  );
}

const HOW: Record<string, string> = {
  returned: "its handler returned after the signal",
  threw: "its handler threw after the signal",
  terminated: "its thread was terminated after the grace period",
  abandoned: "its handler was abandoned after the grace period (inline handlers cannot be killed)",
};

type StopOutcome = { at: string; node: string; how: string; reason: string };

/**
 * The stop of a running attempt. The task's `task.cancelled` says when it was requested (and the store's state
 * changed at once); the node that ran it gets the signal through the bus, and writes `task.stopped` to the `nodes`
 * channel once the attempt really ended. That event is followed from the cancel's offset, so a reload finds it too.
 */
function StopLifecycle({ task, events, position }: { task: LiveTask; events: TaskEvent[]; position: Position | null }) {
  const cancel = [...events].reverse().find((e) => e.type === "task.cancelled");
  const wasRunning = cancel !== undefined && cancel.data?.previousState === "running";
  const started = useMemo(
    () =>
      cancel === undefined
        ? undefined
        : [...events].reverse().find((e) => e.type === "task.started" && e.offset < cancel.offset),
    [events, cancel],
  );
  const [outcome, setOutcome] = useState<StopOutcome | null>(null);
  const nodeName = useNodeName();
  const since = wasRunning && position !== null ? { epoch: position.epoch, offset: cancel.offset - 1 } : null;
  useLive(since === null || outcome !== null ? null : ["nodes"], {
    since,
    onEvents: (batch: LiveEvent[]) => {
      for (const event of batch) {
        const data = (event.data ?? {}) as Record<string, unknown>;
        if (event.name === "task.stopped" && data.taskId === task.id) {
          setOutcome({
            at: event.at,
            node: String(data.node ?? ""),
            how: String(data.how ?? ""),
            reason: String(data.reason ?? ""),
          });
        }
      }
    },
  });
  if (!wasRunning || cancel === undefined) return null;
  const node = nodeName((started?.data?.node as string | undefined) ?? task.node) ?? "its node";
  const took = outcome === null ? null : Date.parse(outcome.at) - Date.parse(cancel.at);
  return (
    <Panel title="Stop" className="stop-panel">
      <ol className="lifecycle" aria-label="Stop lifecycle">
        <li className="done">
          <span className="step-dot" aria-hidden="true" />
          <div>
            <strong>Stop requested</strong> — {String(cancel.data?.reason ?? "cancelled")}
            <div className="muted small" title={formatExact(cancel.at)}>
              <Time at={cancel.at} /> · the task is <em>cancelled</em> in the store at once
            </div>
          </div>
        </li>
        <li className="done">
          <span className="step-dot" aria-hidden="true" />
          <div>
            <strong>Signal on {node}</strong>
            <div className="muted small">
              the node running attempt {String(started?.data?.attempt ?? task.attempt)} fires its abort signal
            </div>
          </div>
        </li>
        <li
          className={
            outcome === null
              ? "waiting"
              : outcome.how === "terminated" || outcome.how === "abandoned"
                ? "forced"
                : "done"
          }
        >
          <span className="step-dot" aria-hidden="true" />
          <div>
            {outcome === null ? (
              <>
                <strong>Waiting for {node}</strong>
                <div className="muted small">
                  to report how the attempt ended (the grace period, then a thread is terminated)
                </div>
              </>
            ) : (
              <>
                <strong data-stop-how={outcome.how}>
                  {outcome.how === "terminated"
                    ? "Thread terminated"
                    : outcome.how === "abandoned"
                      ? "Handler abandoned"
                      : "Stopped"}
                </strong>{" "}
                on {nodeName(outcome.node)}: {HOW[outcome.how] ?? outcome.how}
                <div className="muted small">
                  <Time at={outcome.at} /> · {formatDuration(took)} after the request
                </div>
              </>
            )}
          </div>
        </li>
      </ol>
    </Panel>
  );
}

function describe(event: TaskEvent, nodeName: (id: string | null) => string | null): string {
  const data = event.data ?? {};
  switch (event.type) {
    case "task.created":
      return `created ${String(data.state ?? "")}`;
    case "task.started":
      return `attempt ${String(data.attempt ?? "")} started on ${nodeName(typeof data.node === "string" ? data.node : null) ?? "?"}`;
    case "task.progress":
      return `${typeof data.percent === "number" ? Math.round(data.percent) : "?"}%${data.info === undefined ? "" : ` ${JSON.stringify(data.info)}`}`;
    case "task.retrying":
      return `attempt ${String(data.attempt ?? "")} failed: ${String(data.error ?? "")} — retry ${data.runAt ? `at ${new Date(String(data.runAt)).toLocaleTimeString()}` : ""}`;
    case "task.failed":
      return `failed: ${String(data.error ?? "")}`;
    case "task.completed":
      return `completed (attempt ${String(data.attempt ?? "")})`;
    case "task.cancelled":
      return `cancelled while ${String(data.previousState ?? "?")}: ${String(data.reason ?? "")}`;
    case "task.rerun":
      return `rerun (was ${String(data.previousState ?? "?")})`;
    case "task.rescued":
      return data.released
        ? `handed back by ${nodeName(String(data.node ?? "?"))} (shutdown)`
        : `rescued from ${nodeName(String(data.node ?? "?"))}`;
    case "task.promoted":
      return "due: queued";
    case "task.deleted":
      return "deleted";
    default:
      return data === null ? "" : JSON.stringify(data);
  }
}

function Timeline({ events }: { events: TaskEvent[] }) {
  const nodeName = useNodeName();
  // Progress reports are many: show the latest few, and every transition.
  const [all, setAll] = useState(false);
  const progress = events.filter((e) => e.type === "task.progress");
  const shown = all ? events : events.filter((e) => e.type !== "task.progress" || progress.slice(-3).includes(e));
  if (events.length === 0) return <Empty>No events.</Empty>;
  return (
    <>
      <ol className="timeline">
        {shown.map((event) => (
          <li key={event.offset} className={`ev ev-${event.type.replace("task.", "")}`}>
            <span className="ev-time muted small num" title={formatExact(event.at)}>
              {new Date(event.at).toLocaleTimeString(undefined, { hour12: false })}.
              {String(new Date(event.at).getMilliseconds()).padStart(3, "0")}
            </span>
            <span className="ev-name">{event.type.replace("task.", "")}</span>
            <span className="ev-text">{describe(event, nodeName)}</span>
          </li>
        ))}
      </ol>
      {progress.length > 3 ? (
        <button type="button" className="link small" onClick={() => setAll(!all)}>
          {all ? "Hide older progress reports" : `Show all ${progress.length} progress reports`}
        </button>
      ) : null}
    </>
  );
}
