/**
 * Stop, rerun or delete many tasks: the chosen rows (by id, 1000 per request, answered at once) or every task that
 * matches the filter (one `conveyor.bulk` task on the server, followed live on its own channel until it reports
 * what it did).
 */
import { Link } from "@tanstack/react-router";
import { useState } from "react";
import { api } from "../api.ts";
import { formatNumber, pluralize } from "../format.ts";
import { useTask } from "../task-hooks.ts";
import type { BulkAction, BulkFilter, BulkResult, Task } from "../types.ts";
import { Button, Dialog, ProgressBar } from "../ui/kit.tsx";

export const ACTION_LABEL: Record<BulkAction, { verb: string; done: string; tone: "danger" | "primary" }> = {
  cancel: { verb: "Stop", done: "stopped", tone: "danger" },
  rerun: { verb: "Rerun", done: "rerun", tone: "primary" },
  delete: { verb: "Delete", done: "deleted", tone: "danger" },
};

const WHAT: Record<BulkAction, string> = {
  cancel: "Waiting tasks are cancelled at once; running ones are signalled on their node and end cancelled.",
  rerun: "Failed and cancelled tasks run again from their first attempt; others are skipped.",
  delete: "Finished tasks are deleted for good; active ones are skipped (stop them first).",
};

export type BulkTarget =
  | { kind: "ids"; ids: number[] }
  | { kind: "filter"; filter: BulkFilter; estimate: number | null };

type Outcome =
  | { kind: "idle" }
  | { kind: "running-ids"; done: number; total: number }
  | { kind: "ids"; result: BulkResult }
  | { kind: "task"; task: Task }
  | { kind: "error"; message: string };

export function BulkDialog({
  action,
  target,
  onClose,
  onDone,
}: {
  action: BulkAction | null;
  target: BulkTarget;
  onClose: () => void;
  onDone: () => void;
}) {
  const [outcome, setOutcome] = useState<Outcome>({ kind: "idle" });
  // What the dialog was opened for, kept while it runs (the page clears its selection once it is done).
  const [frozen, setFrozen] = useState<BulkTarget | null>(null);
  const label = action === null ? null : ACTION_LABEL[action];
  const shown = frozen ?? target;
  const count = shown.kind === "ids" ? shown.ids.length : shown.estimate;
  const close = () => {
    setOutcome({ kind: "idle" });
    setFrozen(null);
    onClose();
  };
  const run = async () => {
    if (action === null) return;
    setFrozen(target);
    try {
      if (target.kind === "ids") {
        const result: BulkResult = { done: [], skipped: [] };
        setOutcome({ kind: "running-ids", done: 0, total: target.ids.length });
        for (let i = 0; i < target.ids.length; i += 1000) {
          const part = await api.bulkByIds(action, target.ids.slice(i, i + 1000));
          result.done.push(...part.done);
          result.skipped.push(...part.skipped);
          setOutcome({ kind: "running-ids", done: i + 1000, total: target.ids.length });
        }
        setOutcome({ kind: "ids", result });
      } else {
        const { task } = await api.bulkByFilter(action, target.filter);
        setOutcome({ kind: "task", task });
      }
      onDone();
    } catch (error) {
      setOutcome({ kind: "error", message: error instanceof Error ? error.message : String(error) });
    }
  };
  const idle = outcome.kind === "idle" || outcome.kind === "error";
  return (
    <Dialog
      open={action !== null}
      onClose={close}
      title={
        label === null ? "" : `${label.verb} ${count === null ? "every matching task" : pluralize(count, "task")}?`
      }
      footer={
        idle ? (
          <>
            <Button onClick={close}>Cancel</Button>
            <Button tone={label?.tone ?? "primary"} onClick={run}>
              {label?.verb} {target.kind === "ids" ? pluralize(target.ids.length, "task") : "all matching"}
            </Button>
          </>
        ) : (
          <Button onClick={close}>Close</Button>
        )
      }
    >
      {action === null ? null : <p>{WHAT[action]}</p>}
      {shown.kind === "filter" ? (
        <p className="muted">
          Every task matching the filter now{count === null ? "" : ` (about ${formatNumber(count)})`}, done on the
          server in the background: you may close this and follow it on its task's page.
        </p>
      ) : null}
      {outcome.kind === "error" ? (
        <p className="error-note" role="alert">
          {outcome.message}
        </p>
      ) : null}
      {outcome.kind === "running-ids" ? (
        <ProgressBar percent={(Math.min(outcome.done, outcome.total) / outcome.total) * 100} label="Bulk action" />
      ) : null}
      {outcome.kind === "ids" && action !== null ? <ResultSummary result={outcome.result} action={action} /> : null}
      {outcome.kind === "task" && action !== null ? <BulkTaskProgress task={outcome.task} action={action} /> : null}
    </Dialog>
  );
}

function ResultSummary({
  result,
  action,
}: {
  result: BulkResult | { done: number; skipped: number };
  action: BulkAction;
}) {
  const done = typeof result.done === "number" ? result.done : result.done.length;
  const skipped = Array.isArray(result.skipped) ? result.skipped : [];
  const skippedCount = typeof result.skipped === "number" ? result.skipped : skipped.length;
  const reasons = new Map<string, number>();
  for (const s of skipped) reasons.set(s.reason, (reasons.get(s.reason) ?? 0) + 1);
  return (
    <div className="bulk-result" role="status">
      <p>
        <strong>{pluralize(done, "task")}</strong> {ACTION_LABEL[action].done}
        {skippedCount > 0 ? `, ${formatNumber(skippedCount)} skipped` : ""}.
      </p>
      {reasons.size > 0 ? (
        <ul className="muted small">
          {[...reasons].map(([reason, n]) => (
            <li key={reason}>
              {formatNumber(n)}: {reason}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** Follows the server's bulk task on `task:<id>`: its progress (done of total) and, at the end, its result. */
function BulkTaskProgress({ task: initial, action }: { task: Task; action: BulkAction }) {
  const task = useTask(initial.id).task ?? { ...initial, at: 0 };
  const info = (task.progress?.info ?? {}) as { done?: number; skipped?: number; total?: number };
  const handled = (info.done ?? 0) + (info.skipped ?? 0);
  return (
    <div className="bulk-progress">
      <ProgressBar percent={task.state === "completed" ? 100 : (task.progress?.percent ?? 0)} label="Bulk action" />
      <p className="muted small">
        {task.state === "completed"
          ? `done: ${formatNumber(handled)} handled`
          : typeof info.total === "number"
            ? `${formatNumber(handled)} of ${formatNumber(info.total)}`
            : typeof info.done === "number"
              ? `${formatNumber(handled)} so far`
              : task.state}{" "}
        ·{" "}
        <Link to="/tasks/$id" params={{ id: String(task.id) }}>
          task #{task.id}
        </Link>
      </p>
      {task.state === "completed" && task.result !== null && typeof task.result === "object" ? (
        <ResultSummary result={task.result as BulkResult} action={action} />
      ) : null}
      {task.state === "failed" ? <p className="error-note">{task.error?.message}</p> : null}
    </div>
  );
}
