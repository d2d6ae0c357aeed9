/**
 * Schedules: each cron schedule with its next runs in the viewer's time zone (UTC on hover), computed in the browser
 * with croner (the server's own cron library) and recomputed as time passes; its last tick is re-read when one of
 * its tasks is created. Enable / disable, run now (a task of its type and data, at once), create, edit (the
 * expression checked as it is typed, with its next five runs), delete.
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useSearch } from "@tanstack/react-router";
import { Cron } from "croner";
import { type FormEvent, useMemo, useState } from "react";
import { api } from "../api.ts";
import { useAuth } from "../auth.tsx";
import { keys, useTaskCue } from "../data.ts";
import { formatDayClock, formatExact, formatUtc, localTimeZone } from "../format.ts";
import { useThrottle } from "../live.tsx";
import type { Schedule, ScheduleInput } from "../types.ts";
import { useNow } from "../ui/clock.ts";
import { Badge, Button, Dialog, Empty, ErrorNote, Panel, Time, toast, toastError } from "../ui/kit.tsx";

/** The next `n` runs of an expression, or the reason it is not one. */
export function nextRuns(
  cron: string,
  timezone: string | null,
  n: number,
  from = new Date(),
): { runs: Date[] } | { error: string } {
  const fields = cron.trim().split(/\s+/).length;
  if (cron.trim() === "") return { error: "Enter an expression" };
  if (fields !== 5 && fields !== 6) return { error: `5 fields (minute first) or 6 (second first); this has ${fields}` };
  try {
    // The server reads a schedule without a time zone as UTC.
    const job = new Cron(cron, { paused: true, timezone: timezone ?? "UTC" });
    const runs = job.nextRuns(n, from);
    job.stop();
    if (runs.length === 0) return { error: "This expression never fires" };
    return { runs };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

export function Schedules() {
  const queryClient = useQueryClient();
  const auth = useAuth();
  const search = useSearch({ from: "/schedules" });
  const navigate = useNavigate({ from: "/schedules" });
  const schedules = useQuery({ queryKey: keys.schedules, queryFn: api.schedules });
  const list = schedules.data?.schedules ?? [];
  const types = useMemo(() => new Set(list.map((s) => s.type)), [list]);
  const refresh = useThrottle(() => void queryClient.invalidateQueries({ queryKey: keys.schedules }), 1000);
  // A schedule's tick is a task.created of its type: the cue to re-read its last tick (while the cluster is busy,
  // each stats bucket is).
  useTaskCue(schedules.data === undefined ? null : undefined, (events) => {
    const ticked = events.some(
      (e) =>
        (e.name === "task.created" && types.has((e.data as { type?: string }).type ?? "")) || e.name === "stats.bucket",
    );
    if (ticked || events.length === 0) refresh();
  });
  const editing =
    search.edit === undefined ? null : search.edit === "+" ? "new" : list.find((s) => s.name === search.edit);
  const closeEditor = () => void navigate({ search: {} });
  return (
    <div className="page page-schedules">
      <header className="page-head">
        <h1>Schedules</h1>
        <span className="muted small">times in {localTimeZone}</span>
        {auth.canWrite ? (
          <div className="head-actions">
            <Button tone="primary" onClick={() => void navigate({ search: { edit: "+" } })}>
              New schedule
            </Button>
          </div>
        ) : null}
      </header>
      <ErrorNote error={schedules.error} />
      {list.length === 0 ? (
        <Panel>
          <Empty>
            {schedules.isPending
              ? "Loading…"
              : "No schedule yet. A schedule enqueues one task per tick of its cron expression, once for the whole cluster."}
          </Empty>
        </Panel>
      ) : (
        <div className="schedule-list">
          {list.map((schedule) => (
            <ScheduleRow key={schedule.name} schedule={schedule} canWrite={auth.canWrite} />
          ))}
        </div>
      )}
      <ScheduleEditor
        key={search.edit ?? "closed"}
        open={editing !== null && editing !== undefined}
        schedule={editing === "new" || editing === null || editing === undefined ? null : editing}
        onClose={closeEditor}
        onSaved={() => {
          closeEditor();
          void queryClient.invalidateQueries({ queryKey: keys.schedules });
        }}
      />
    </div>
  );
}

function ScheduleRow({ schedule, canWrite }: { schedule: Schedule; canWrite: boolean }) {
  const queryClient = useQueryClient();
  const navigate = useNavigate({ from: "/schedules" });
  const now = useNow();
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const { canAdmin } = useAuth();
  // Recomputed each minute (and when the schedule changes), not each second.
  const minute = Math.floor(now / 60_000);
  const upcoming = useMemo(() => {
    void minute; // the clock: a new minute, new next runs
    return nextRuns(schedule.cron, schedule.timezone, 3);
  }, [schedule.cron, schedule.timezone, minute]);
  const act = async (what: () => Promise<unknown>, done: string) => {
    setBusy(true);
    try {
      await what();
      toast(done);
      await queryClient.invalidateQueries({ queryKey: keys.schedules });
    } catch (error) {
      toastError(error);
    } finally {
      setBusy(false);
      setConfirmDelete(false);
    }
  };
  const toggle = () =>
    act(
      () => api.putSchedule(schedule.name, { ...inputOf(schedule), enabled: !schedule.enabled }),
      `${schedule.name} ${schedule.enabled ? "disabled" : "enabled"}`,
    );
  const runNow = () =>
    act(async () => {
      const { task } = await api.enqueue({
        type: schedule.type,
        data: schedule.data,
        ...(schedule.options.queue === undefined ? {} : { queue: schedule.options.queue }),
        ...(schedule.options.priority === undefined ? {} : { priority: schedule.options.priority }),
        ...(schedule.options.maxAttempts === undefined ? {} : { maxAttempts: schedule.options.maxAttempts }),
      });
      return task;
    }, `${schedule.name}: a ${schedule.type} task was enqueued`);
  return (
    <section className={`panel schedule${schedule.enabled ? "" : " disabled"}`} data-schedule={schedule.name}>
      <div className="schedule-main">
        <div className="schedule-title">
          <h2>{schedule.name}</h2>
          {schedule.enabled ? <Badge tone="ok">enabled</Badge> : <Badge tone="neutral">disabled</Badge>}
        </div>
        <div className="schedule-what">
          <code className="cron">{schedule.cron}</code>
          <span className="muted small">{schedule.timezone ?? "UTC"}</span>
          <span>→</span>
          <Link to="/tasks" search={{ type: schedule.type }}>
            {schedule.type}
          </Link>
          {schedule.options.queue ? <span className="muted small">on {schedule.options.queue}</span> : null}
        </div>
      </div>
      <div className="schedule-times">
        <div>
          <span className="label">Next</span>
          {!schedule.enabled ? (
            <span className="muted">—</span>
          ) : "error" in upcoming ? (
            <span className="error-note">{upcoming.error}</span>
          ) : (
            <span className="next-runs">
              {upcoming.runs.slice(0, 1).map((run) => (
                <time
                  key={run.getTime()}
                  dateTime={run.toISOString()}
                  title={`${formatExact(run)}\n${formatUtc(run)}`}
                  className="next-run first"
                >
                  {formatDayClock(run)}
                </time>
              ))}
              <span className="muted small">
                {"error" in upcoming ? null : <Time at={upcoming.runs[0]!.getTime()} />}
              </span>
            </span>
          )}
        </div>
        {schedule.enabled && !("error" in upcoming) && upcoming.runs.length > 1 ? (
          <div>
            <span className="label">Then</span>
            <span className="next-runs">
              {upcoming.runs.slice(1).map((run) => (
                <time
                  key={run.getTime()}
                  dateTime={run.toISOString()}
                  title={`${formatExact(run)}\n${formatUtc(run)}`}
                  className="next-run"
                >
                  {formatDayClock(run)}
                </time>
              ))}
            </span>
          </div>
        ) : null}
        <div>
          <span className="label">Last tick</span>
          <Time at={schedule.lastTick} />
        </div>
      </div>
      {canWrite ? (
        <div className="schedule-actions">
          <Button small onClick={runNow} disabled={busy} label={`Run ${schedule.name} now`}>
            Run now
          </Button>
          <Button
            small
            onClick={toggle}
            disabled={busy}
            label={`${schedule.enabled ? "Disable" : "Enable"} ${schedule.name}`}
          >
            {schedule.enabled ? "Disable" : "Enable"}
          </Button>
          <Button
            small
            onClick={() => void navigate({ search: { edit: schedule.name } })}
            label={`Edit ${schedule.name}`}
          >
            Edit
          </Button>
          {canAdmin ? (
            <Button small tone="ghost" onClick={() => setConfirmDelete(true)} label={`Delete ${schedule.name}`}>
              Delete
            </Button>
          ) : null}
        </div>
      ) : null}
      <Dialog
        open={confirmDelete}
        onClose={() => setConfirmDelete(false)}
        title={`Delete ${schedule.name}?`}
        footer={
          <>
            <Button onClick={() => setConfirmDelete(false)}>Keep it</Button>
            <Button
              tone="danger"
              disabled={busy}
              onClick={() => act(() => api.deleteSchedule(schedule.name), `${schedule.name} deleted`)}
            >
              Delete schedule
            </Button>
          </>
        }
      >
        <p>It stops enqueueing tasks; the tasks it already made are kept.</p>
      </Dialog>
    </section>
  );
}

function inputOf(schedule: Schedule): ScheduleInput {
  const input: ScheduleInput = {
    cron: schedule.cron,
    type: schedule.type,
    timezone: schedule.timezone,
    data: schedule.data,
    enabled: schedule.enabled,
  };
  const { queue, priority, maxAttempts, timeoutMs } = schedule.options;
  if (typeof queue === "string") input.queue = queue;
  if (typeof priority === "number") input.priority = priority;
  if (typeof maxAttempts === "number") input.maxAttempts = maxAttempts;
  if (timeoutMs !== undefined) input.timeoutMs = timeoutMs;
  return input;
}

const ZONES = [
  "UTC",
  localTimeZone,
  "Europe/London",
  "Europe/Paris",
  "America/New_York",
  "America/Los_Angeles",
  "Asia/Tokyo",
];

function ScheduleEditor({
  open,
  schedule,
  onClose,
  onSaved,
}: {
  open: boolean;
  schedule: Schedule | null;
  onClose: () => void;
  onSaved: () => void;
}) {
  const [name, setName] = useState(schedule?.name ?? "");
  const [cron, setCron] = useState(schedule?.cron ?? "*/5 * * * *");
  const [timezone, setTimezone] = useState(schedule?.timezone ?? "UTC");
  const [type, setType] = useState(schedule?.type ?? "");
  const [data, setData] = useState(schedule === null ? "{}" : JSON.stringify(schedule.data ?? null, null, 2));
  const [queue, setQueue] = useState(schedule?.options.queue ?? "");
  const [priority, setPriority] = useState(String(schedule?.options.priority ?? ""));
  const [enabled, setEnabled] = useState(schedule?.enabled ?? true);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const zone = timezone === "UTC" ? null : timezone;
  const preview = useMemo(() => nextRuns(cron, zone, 5), [cron, zone]);
  const dataError = useMemo(() => {
    try {
      JSON.parse(data === "" ? "null" : data);
      return null;
    } catch (problem) {
      return problem instanceof Error ? problem.message : "not JSON";
    }
  }, [data]);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if ("error" in preview || dataError !== null) return;
    setBusy(true);
    setError(null);
    try {
      const input: ScheduleInput = {
        cron: cron.trim(),
        type: type.trim(),
        timezone: zone,
        data: JSON.parse(data === "" ? "null" : data),
        enabled,
      };
      if (queue.trim() !== "") input.queue = queue.trim();
      if (priority.trim() !== "") input.priority = Number(priority);
      if (schedule !== null) {
        const { maxAttempts, timeoutMs } = schedule.options;
        if (typeof maxAttempts === "number") input.maxAttempts = maxAttempts;
        if (timeoutMs !== undefined) input.timeoutMs = timeoutMs;
      }
      await api.putSchedule(name.trim(), input);
      toast(`${name.trim()} saved`);
      onSaved();
    } catch (problem) {
      setError(problem instanceof Error ? problem.message : String(problem));
    } finally {
      setBusy(false);
    }
  };
  const canSave = name.trim() !== "" && type.trim() !== "" && !("error" in preview) && dataError === null && !busy;
  return (
    <Dialog
      open={open}
      onClose={onClose}
      wide
      title={schedule === null ? "New schedule" : `Edit ${schedule.name}`}
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button tone="primary" type="submit" form="schedule-form" disabled={!canSave}>
            Save
          </Button>
        </>
      }
    >
      <form id="schedule-form" className="form-grid" onSubmit={submit}>
        <label className="field">
          <span>Name</span>
          <input
            value={name}
            onChange={(event) => setName(event.target.value)}
            readOnly={schedule !== null}
            required
            pattern="[A-Za-z0-9_.:\-]{1,128}"
            placeholder="nightly-report"
          />
        </label>
        <label className="field">
          <span>Task type</span>
          <input value={type} onChange={(event) => setType(event.target.value)} required placeholder="report.build" />
        </label>
        <label className="field span-2">
          <span>Cron expression</span>
          <input
            className="mono"
            value={cron}
            onChange={(event) => setCron(event.target.value)}
            aria-invalid={"error" in preview}
            aria-describedby="cron-help"
            spellCheck={false}
          />
          <small id="cron-help" className="muted">
            minute hour day month weekday — or 6 fields with seconds first
          </small>
        </label>
        <label className="field">
          <span>Time zone</span>
          <select value={timezone} onChange={(event) => setTimezone(event.target.value)}>
            {[...new Set([timezone, ...ZONES])].map((z) => (
              <option key={z} value={z}>
                {z}
              </option>
            ))}
          </select>
        </label>
        <div className="field">
          <span>Enabled</span>
          <label className="check">
            <input type="checkbox" checked={enabled} onChange={(event) => setEnabled(event.target.checked)} />
            fires on its ticks
          </label>
        </div>
        <div className="field span-2 preview" aria-live="polite">
          <span>Next five runs ({localTimeZone})</span>
          {"error" in preview ? (
            <p className="error-note" role="alert">
              {preview.error}
            </p>
          ) : (
            <ol className="preview-runs">
              {preview.runs.map((run) => (
                <li key={run.getTime()}>
                  <time dateTime={run.toISOString()} title={formatUtc(run)}>
                    {formatExact(run)}
                  </time>
                </li>
              ))}
            </ol>
          )}
        </div>
        <label className="field span-2">
          <span>Data (JSON)</span>
          <textarea
            className="mono"
            rows={4}
            value={data}
            onChange={(event) => setData(event.target.value)}
            aria-invalid={dataError !== null}
            spellCheck={false}
          />
          {dataError === null ? null : <small className="error-note">{dataError}</small>}
        </label>
        <label className="field">
          <span>Queue</span>
          <input value={queue} onChange={(event) => setQueue(event.target.value)} placeholder="the type's" />
        </label>
        <label className="field">
          <span>Priority</span>
          <input
            type="number"
            value={priority}
            onChange={(event) => setPriority(event.target.value)}
            placeholder="the type's"
          />
        </label>
        <ErrorNote error={error} />
      </form>
    </Dialog>
  );
}
