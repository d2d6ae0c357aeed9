/**
 * Overview: throughput and timings over the last 15 minutes (GET /api/stats, then each node's 5-second buckets from
 * the `stats` channel as they close, merged by summing their histograms), counts per queue and state (the counts
 * table, refreshed as task events flow), the nodes and their health, and the latest failures.
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { useMemo, useState } from "react";
import type uPlot from "uplot";
import { emptyHistogram, histogramMerge, histogramQuantile } from "../../../src/core/stats.ts";
import { ApiError, api } from "../api.ts";
import { keys, useCluster, useCountsLive, useLatch, useQueues, useTaskCue } from "../data.ts";
import { formatCompact, formatNumber } from "../format.ts";
import { type LiveEvent, useLive, useThrottle } from "../live.tsx";
import { type Counts, type NodeBucket, type Percentiles, type StatsBucket, TASK_STATES } from "../types.ts";
import { TimeChart } from "../ui/chart.tsx";
import { Badge, Empty, ErrorNote, Panel, StateBadge, Time, StatCard } from "../ui/kit.tsx";

const WINDOW_S = 900;
const BUCKET_S = 5;

type Bucket = {
  at: number;
  completed: number;
  failed: number;
  retried: number;
  runMs: Percentiles;
  waitMs: Percentiles;
  /** Merged histograms of the live parts (counts over STATS_BOUNDS_MS). */
  run?: number[];
  wait?: number[];
};

function merge(into: number[] | undefined, part: readonly number[] | undefined): number[] | undefined {
  if (part === undefined || !Array.isArray(part)) return into;
  const sum = into === undefined ? emptyHistogram() : [...into];
  histogramMerge(sum, part);
  return sum;
}

function percentilesOf(h: number[] | undefined): Percentiles {
  if (h === undefined) return null;
  const p50 = histogramQuantile(h, 0.5);
  if (p50 === null) return null;
  return { p50, p95: histogramQuantile(h, 0.95) ?? p50, p99: histogramQuantile(h, 0.99) ?? p50 };
}

/** The last 15 minutes of buckets: the snapshot, then live buckets merged in. */
function useThroughput() {
  const queryClient = useQueryClient();
  const stats = useQuery({
    queryKey: keys.stats,
    queryFn: async () => {
      try {
        return await api.stats(WINDOW_S);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return null;
        throw error;
      }
    },
  });
  const [live, setLive] = useState<Map<number, Bucket>>(new Map());
  const since = useLatch(stats.data === undefined ? null : (stats.data?.position ?? { epoch: "", offset: -1 }));
  const available = stats.data !== null;
  const onEvents = (events: LiveEvent[]) => {
    setLive((previous) => {
      const next = new Map(previous);
      for (const event of events) {
        if (available && event.name === "stats.bucket") {
          const part = event.data as NodeBucket;
          const at = Math.floor(Date.parse(part.at) / 1000);
          const bucket: Bucket = next.get(at) ?? { at, completed: 0, failed: 0, retried: 0, runMs: null, waitMs: null };
          const run = merge(bucket.run, part.run);
          const wait = merge(bucket.wait, part.wait);
          next.set(at, {
            ...bucket,
            completed: bucket.completed + part.completed,
            failed: bucket.failed + part.failed,
            retried: bucket.retried + part.retried,
            run,
            wait,
            runMs: percentilesOf(run),
            waitMs: percentilesOf(wait),
          });
        } else if (!available && (event.name === "task.completed" || event.name === "task.failed")) {
          // Without /api/stats (an older node): counted from the task events since the page opened.
          const at = Math.floor(Date.parse(event.at) / 1000 / BUCKET_S) * BUCKET_S;
          const bucket: Bucket = next.get(at) ?? { at, completed: 0, failed: 0, retried: 0, runMs: null, waitMs: null };
          next.set(at, {
            ...bucket,
            completed: bucket.completed + (event.name === "task.completed" ? 1 : 0),
            failed: bucket.failed + (event.name === "task.failed" ? 1 : 0),
          });
        }
      }
      const horizon = Date.now() / 1000 - WINDOW_S;
      for (const at of next.keys()) if (at < horizon) next.delete(at);
      return next;
    });
  };
  const reload = useThrottle(() => {
    setLive(new Map());
    void queryClient.resetQueries({ queryKey: keys.stats });
  }, 2000);
  useLive(stats.data === undefined ? null : [available ? "stats" : "tasks"], {
    since: available ? since : undefined,
    onEvents,
    onReload: reload,
  });

  return useMemo(() => {
    const buckets = new Map<number, Bucket>();
    for (const b of stats.data?.buckets ?? ([] as StatsBucket[])) {
      const at = Math.floor(Date.parse(b.at) / 1000);
      buckets.set(at, { ...b, at });
    }
    for (const [at, b] of live) {
      const known = buckets.get(at);
      buckets.set(
        at,
        known === undefined
          ? b
          : {
              ...known,
              completed: known.completed + b.completed,
              failed: known.failed + b.failed,
              retried: known.retried + b.retried,
              // Percentiles cannot be merged: the snapshot's stand, unless it had none.
              runMs: known.runMs ?? b.runMs,
              waitMs: known.waitMs ?? b.waitMs,
            },
      );
    }
    const size = stats.data?.bucketSeconds ?? BUCKET_S;
    const end = Math.floor(Date.now() / 1000 / size) * size;
    const times: number[] = [];
    const completed: (number | null)[] = [];
    const failed: (number | null)[] = [];
    const run: (number | null)[][] = [[], [], []];
    const wait: (number | null)[][] = [[], []];
    for (let at = end - WINDOW_S; at <= end; at += size) {
      const b = buckets.get(at);
      times.push(at);
      completed.push(b === undefined ? 0 : b.completed / size);
      failed.push(b === undefined ? 0 : b.failed / size);
      run[0]!.push(b?.runMs?.p50 ?? null);
      run[1]!.push(b?.runMs?.p95 ?? null);
      run[2]!.push(b?.runMs?.p99 ?? null);
      wait[0]!.push(b?.waitMs?.p50 ?? null);
      wait[1]!.push(b?.waitMs?.p95 ?? null);
    }
    const recent = [...buckets.values()].filter((b) => b.at >= end - 60);
    const minute = {
      completed: recent.reduce((s, b) => s + b.completed, 0),
      failed: recent.reduce((s, b) => s + b.failed, 0),
      p95: Math.max(0, ...recent.map((b) => b.runMs?.p95 ?? 0)),
    };
    return {
      available,
      loading: stats.isPending,
      error: stats.error,
      throughput: [times, completed, failed] as uPlot.AlignedData,
      timings: [times, ...run, ...wait] as uPlot.AlignedData,
      minute,
    };
  }, [stats.data, stats.isPending, stats.error, live, available]);
}

const perSecond = (v: number) =>
  v === 0
    ? "0"
    : v >= 100
      ? formatCompact(Math.round(v))
      : v >= 10
        ? v.toFixed(0)
        : v >= 0.1
          ? v.toFixed(1)
          : v.toFixed(2);
/** Tenths under 10 ms: no-op tasks run in a fraction of a millisecond, and a scale from 0 to 1 ms needs its 0.5. */
const ms = (v: number) =>
  v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)} s` : `${v < 10 ? Number(v.toFixed(1)) : Math.round(v)} ms`;

const THROUGHPUT_SERIES = [
  { label: "completed /s", color: "#2f9e44", fill: true },
  { label: "failed /s", color: "#e03131" },
];
const TIMING_SERIES = [
  { label: "run p50", color: "#4263eb" },
  { label: "run p95", color: "#7048e8" },
  { label: "run p99", color: "#ae3ec9", dash: [4, 3] },
  { label: "wait p50", color: "#f08c00" },
  { label: "wait p95", color: "#e8590c", dash: [4, 3] },
];

export function Overview() {
  const counts = useCountsLive();
  const throughput = useThroughput();
  const queues = useQueues();
  const totals = useMemo(() => {
    const sum = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Counts;
    for (const q of queues.data?.queues ?? []) for (const s of TASK_STATES) sum[s] += q.counts[s];
    return sum;
  }, [queues.data]);
  return (
    <div className="page page-overview">
      <header className="page-head">
        <h1>Overview</h1>
      </header>
      <div className="cards">
        <StatCard label="Running" value={formatCompact(totals.running)} to="/tasks" search={{ state: "running" }} />
        <StatCard
          label="Waiting"
          value={formatCompact(totals.queued + totals.scheduled)}
          hint={`${formatNumber(totals.queued)} queued · ${formatNumber(totals.scheduled)} scheduled`}
          to="/tasks"
          search={{ state: "queued,scheduled" }}
        />
        <StatCard
          label="Completed, last minute"
          value={formatCompact(throughput.minute.completed)}
          hint={`${perSecond(throughput.minute.completed / 60)} /s`}
        />
        <StatCard
          label="Failed, last minute"
          value={formatCompact(throughput.minute.failed)}
          tone={throughput.minute.failed > 0 ? "bad" : undefined}
          to="/tasks"
          search={{ state: "failed" }}
        />
        <StatCard
          label="Run time p95, last minute"
          value={throughput.minute.p95 > 0 ? ms(throughput.minute.p95) : "—"}
        />
      </div>
      <div className="two-col charts">
        <Panel title="Throughput" actions={<span className="muted small">last 15 min · per second</span>}>
          <ErrorNote error={throughput.error} />
          <TimeChart
            data={throughput.throughput}
            series={THROUGHPUT_SERIES}
            label="Tasks completed and failed per second"
            format={perSecond}
          />
        </Panel>
        <Panel title="Run and wait time" actions={<span className="muted small">percentiles per 5 s</span>}>
          {throughput.available ? (
            <TimeChart
              data={throughput.timings}
              series={TIMING_SERIES}
              label="Run and wait time percentiles"
              format={ms}
            />
          ) : (
            <Empty>Timings need a node that serves /api/stats.</Empty>
          )}
        </Panel>
      </div>
      <div className="two-col">
        <QueueCounts busy={counts.busy} />
        <NodesHealth />
      </div>
      <LatestFailures />
    </div>
  );
}

function QueueCounts({ busy }: { busy: boolean }) {
  const queues = useQueues();
  const rows = queues.data?.queues ?? [];
  return (
    <Panel
      title="Queues"
      actions={
        <>
          {busy ? (
            <span
              className="muted small"
              title="Over 300 task events a second: counts are re-read with each stats bucket"
            >
              busy: every 5 s
            </span>
          ) : null}
          <Link to="/queues">Manage</Link>
        </>
      }
    >
      <ErrorNote error={queues.error} />
      {rows.length === 0 ? (
        <Empty>{queues.isPending ? "Loading…" : "No queue has had a task yet."}</Empty>
      ) : (
        <div className="scroll-x">
          <table className="grid counts">
            <thead>
              <tr>
                <th scope="col">Queue</th>
                {TASK_STATES.map((s) => (
                  <th key={s} scope="col" className="num">
                    {s}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((q) => (
                <tr key={q.queue}>
                  <th scope="row">
                    <Link to="/tasks" search={{ queue: q.queue }}>
                      {q.queue}
                    </Link>
                    {q.paused ? (
                      <>
                        {" "}
                        <Badge tone="warn">paused</Badge>
                      </>
                    ) : null}
                  </th>
                  {TASK_STATES.map((s) => (
                    <td key={s} className={`num${q.counts[s] === 0 ? " zero" : ""}`}>
                      <Link
                        to="/tasks"
                        search={{ queue: q.queue, state: s }}
                        aria-label={`${q.queue} ${s}: ${q.counts[s]}`}
                      >
                        {formatCompact(q.counts[s])}
                      </Link>
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Panel>
  );
}

function NodesHealth() {
  const cluster = useCluster();
  const nodes = cluster.data?.nodes ?? [];
  return (
    <Panel title="Nodes" actions={<Link to="/nodes">Details</Link>}>
      <ErrorNote error={cluster.error} />
      {nodes.length === 0 ? (
        <Empty>{cluster.isPending ? "Loading…" : "No node."}</Empty>
      ) : (
        <ul className="node-list">
          {nodes.map((node) => {
            const troubled = countTrouble(node.info.tree);
            const running = (node.info.queues ?? []).reduce((s, q) => s + q.running, 0);
            return (
              <li key={node.id}>
                <span className={`dot ${node.alive ? (troubled > 0 ? "warn" : "ok") : "bad"}`} aria-hidden="true" />
                <span className="node-name" title={node.id}>
                  {node.name}
                </span>
                {node.leader ? <Badge tone="info">leader</Badge> : null}
                <span className="muted small">
                  {node.alive
                    ? troubled > 0
                      ? `${troubled} service${troubled === 1 ? "" : "s"} restarted`
                      : "healthy"
                    : "dead"}
                  {" · "}
                  {running} running · v{node.version}
                </span>
              </li>
            );
          })}
        </ul>
      )}
    </Panel>
  );
}

function countTrouble(tree: import("../types.ts").ServiceNode | undefined): number {
  if (tree === undefined) return 0;
  const own = (tree.restarts ?? 0) > 0 || (tree.state !== "running" && tree.children === undefined) ? 1 : 0;
  return (tree.children ?? []).reduce((sum, child) => sum + countTrouble(child), tree.children === undefined ? own : 0);
}

function LatestFailures() {
  const queryClient = useQueryClient();
  const failures = useQuery({
    queryKey: ["failures"],
    queryFn: () => api.tasks({ state: ["failed"] }, undefined, 8),
  });
  const refresh = useThrottle(() => void queryClient.invalidateQueries({ queryKey: ["failures"] }), 2000);
  useTaskCue(useLatch(failures.data?.position ?? null), (events) => {
    const failed = events.some(
      (e) =>
        e.name === "task.failed" ||
        e.name === "task.deleted" ||
        e.name === "task.rerun" ||
        (e.name === "stats.bucket" && (e.data as NodeBucket).failed > 0),
    );
    if (failed || events.length === 0) refresh();
  });
  const tasks = failures.data?.tasks ?? [];
  return (
    <Panel
      title="Latest failures"
      actions={
        <Link to="/tasks" search={{ state: "failed" }}>
          All failed
        </Link>
      }
    >
      <ErrorNote error={failures.error} />
      {tasks.length === 0 ? (
        <Empty>{failures.isPending ? "Loading…" : "No failed task. "}</Empty>
      ) : (
        <ul className="failures">
          {tasks.map((task) => (
            <li key={task.id}>
              <Link to="/tasks/$id" params={{ id: String(task.id) }} className="num">
                #{task.id}
              </Link>
              <span className="failure-type">{task.type}</span>
              <span className="failure-message" title={task.error?.message}>
                {task.error?.message ?? "—"}
              </span>
              <span className="muted small">
                {task.attempt}/{task.maxAttempts} · <Time at={task.finishedAt} />
              </span>
              <StateBadge state={task.state} />
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}
