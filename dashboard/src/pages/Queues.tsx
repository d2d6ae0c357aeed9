/**
 * Queues: counts per state (the counts table), paused or not, and how many tasks of each each node runs at once:
 * set cluster-wide here (PUT /api/queues/:name/concurrency) and applied live by every node; what each node runs
 * right now comes from its row in GET /api/nodes.
 */
import { useQueryClient } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { type FormEvent, useState } from "react";
import { api } from "../api.ts";
import { useAuth } from "../auth.tsx";
import { keys, useCluster, useCountsLive, useQueues } from "../data.ts";
import { formatCompact, formatNumber } from "../format.ts";
import { type QueueStats, TASK_STATES } from "../types.ts";
import { Badge, Button, Empty, ErrorNote, Panel, toast, toastError } from "../ui/kit.tsx";

export function Queues() {
  useCountsLive();
  const queues = useQueues();
  const cluster = useCluster();
  const rows = queues.data?.queues ?? [];
  return (
    <div className="page page-queues">
      <header className="page-head">
        <h1>Queues</h1>
      </header>
      <ErrorNote error={queues.error} />
      {rows.length === 0 ? (
        <Panel>
          <Empty>{queues.isPending ? "Loading…" : "No queue has had a task yet."}</Empty>
        </Panel>
      ) : (
        <div className="queue-cards">
          {rows.map((q) => (
            <QueueCard key={q.queue} queue={q} nodes={cluster.data?.nodes ?? []} />
          ))}
        </div>
      )}
    </div>
  );
}

function QueueCard({ queue, nodes }: { queue: QueueStats; nodes: import("../types.ts").NodeRow[] }) {
  const auth = useAuth();
  const queryClient = useQueryClient();
  const [busy, setBusy] = useState(false);
  const perNode = nodes
    .filter((n) => n.alive)
    .map((n) => ({ node: n, q: (n.info.queues ?? []).find((x) => x.queue === queue.queue) }))
    .filter((x) => x.q !== undefined);
  const run = async (what: () => Promise<unknown>, done: string) => {
    setBusy(true);
    try {
      await what();
      toast(done);
      await queryClient.invalidateQueries({ queryKey: keys.queues });
      void queryClient.invalidateQueries({ queryKey: keys.nodes });
    } catch (error) {
      toastError(error);
    } finally {
      setBusy(false);
    }
  };
  const active = queue.counts.queued + queue.counts.running + queue.counts.scheduled;
  return (
    <section className="panel queue-card" aria-labelledby={`queue-${queue.queue}`} data-queue={queue.queue}>
      <header className="panel-head">
        <h2 id={`queue-${queue.queue}`}>
          <Link to="/tasks" search={{ queue: queue.queue }}>
            {queue.queue}
          </Link>{" "}
          {queue.paused ? <Badge tone="warn">paused</Badge> : <Badge tone="ok">running</Badge>}
        </h2>
        {auth.canWrite ? (
          <div className="panel-actions">
            {queue.paused ? (
              <Button
                tone="primary"
                small
                disabled={busy}
                onClick={() => run(() => api.resume(queue.queue), `Queue ${queue.queue} resumed`)}
              >
                Resume
              </Button>
            ) : (
              <Button
                small
                disabled={busy}
                onClick={() => run(() => api.pause(queue.queue), `Queue ${queue.queue} paused`)}
              >
                Pause
              </Button>
            )}
          </div>
        ) : null}
      </header>
      <dl className="state-counts">
        {TASK_STATES.map((s) => (
          <div key={s} className={`sc state-${s}${queue.counts[s] > 0 ? " some" : ""}`}>
            <dt>{s}</dt>
            <dd className="num">
              <Link to="/tasks" search={{ queue: queue.queue, state: s }}>
                {formatCompact(queue.counts[s])}
              </Link>
            </dd>
          </div>
        ))}
      </dl>
      <div className="queue-foot">
        <Concurrency
          queue={queue}
          canWrite={auth.canAdmin}
          nodeDefault={perNode.length === 0 ? null : Math.max(...perNode.map((x) => x.q!.concurrency))}
        />
        <div className="per-node">
          {perNode.length === 0 ? (
            <span className="muted small">{active === 0 ? "Idle" : "No live node serves it"}</span>
          ) : (
            perNode.map(({ node, q }) => (
              <span key={node.id} className="per-node-item" title={node.id}>
                <span className="muted small">{node.name}</span>{" "}
                <span className="num">
                  {q!.running}/{q!.concurrency}
                </span>
              </span>
            ))
          )}
        </div>
      </div>
    </section>
  );
}

function Concurrency({
  queue,
  canWrite,
  nodeDefault,
}: {
  queue: QueueStats;
  canWrite: boolean;
  /** What the nodes run now, when the queue has no setting of its own. */
  nodeDefault: number | null;
}) {
  const queryClient = useQueryClient();
  const current = queue.concurrency ?? null;
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(String(current ?? ""));
  const [error, setError] = useState<string | null>(null);
  const save = async (next: number | null) => {
    try {
      await api.setConcurrency(queue.queue, next);
      toast(next === null ? `${queue.queue}: each node's default` : `${queue.queue}: ${next} at once per node`);
      setEditing(false);
      await queryClient.invalidateQueries({ queryKey: keys.queues });
      void queryClient.invalidateQueries({ queryKey: keys.nodes });
    } catch (problem) {
      setError(problem instanceof Error ? problem.message : String(problem));
    }
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 1000) {
      setError("A whole number from 0 (none run) to 1000");
      return;
    }
    setError(null);
    void save(n);
  };
  if (queue.concurrency === undefined) {
    return <span className="muted small">Concurrency: each node's own</span>;
  }
  if (!editing) {
    return (
      <span className="concurrency">
        <span className="muted small">Concurrency per node</span>{" "}
        <strong className="num" title={current === null ? "each node's own --concurrency" : undefined}>
          {current === null ? `default${nodeDefault === null ? "" : ` (${nodeDefault})`}` : formatNumber(current)}
        </strong>
        {canWrite ? (
          <button
            type="button"
            className="link small"
            onClick={() => {
              setValue(String(current ?? ""));
              setEditing(true);
            }}
            aria-label={`Change the concurrency of ${queue.queue}`}
          >
            Change
          </button>
        ) : null}
      </span>
    );
  }
  return (
    <form className="concurrency-form" onSubmit={submit}>
      <label className="field inline">
        <span>Per node</span>
        <input
          type="number"
          min={0}
          max={1000}
          value={value}
          // biome-ignore lint/a11y/noAutofocus: opened by the user to type this
          autoFocus
          onChange={(event) => setValue(event.target.value)}
          aria-invalid={error !== null}
          aria-describedby={error === null ? undefined : `concurrency-error-${queue.queue}`}
        />
      </label>
      <Button type="submit" small tone="primary">
        Set
      </Button>
      <Button small onClick={() => void save(null)} title="Each node's own --concurrency">
        Default
      </Button>
      <Button small tone="ghost" onClick={() => setEditing(false)}>
        Cancel
      </Button>
      {error === null ? null : (
        <span id={`concurrency-error-${queue.queue}`} className="error-note small" role="alert">
          {error}
        </span>
      )}
    </form>
  );
}
