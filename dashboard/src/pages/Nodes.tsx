/**
 * Nodes: the cluster's members (GET /api/nodes) with their leader, version, uptime, heartbeat age and supervision
 * tree (restart counts, last errors); the cluster's timeline (leader changes, joins, deaths, service crashes and
 * restarts: the `nodes` channel since the page opened, and what the rows say of before); and, when this node allows
 * it, failure drills (crash a service, make a type's next attempts fail).
 */
import { useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useMemo, useState } from "react";
import { api } from "../api.ts";
import { useAuth } from "../auth.tsx";
import { keys, type TimelineEntry, useCluster, useThisNode, useTimeline } from "../data.ts";
import { formatDuration } from "../format.ts";
import { useLive, useThrottle } from "../live.tsx";
import type { NodeRow, ServiceNode } from "../types.ts";
import { useNow } from "../ui/clock.ts";
import { Badge, Button, Empty, ErrorNote, Panel, Time, toast, toastError } from "../ui/kit.tsx";

export function Nodes() {
  const cluster = useCluster();
  const queryClient = useQueryClient();
  // Heartbeats are not events: each node's stats bucket (every 5 s) is the cue to re-read the rows and their ages.
  const refresh = useThrottle(() => void queryClient.invalidateQueries({ queryKey: keys.nodes }), 5000);
  useLive(["stats"], { onEvents: refresh });
  const nodes = cluster.data?.nodes ?? [];
  return (
    <div className="page page-nodes">
      <header className="page-head">
        <h1>Nodes</h1>
        <span className="muted">
          {nodes.filter((n) => n.alive).length} alive
          {cluster.data?.leader
            ? ` · leader ${nodes.find((n) => n.id === cluster.data?.leader)?.name ?? cluster.data.leader}`
            : " · no leader"}
        </span>
      </header>
      <ErrorNote error={cluster.error} />
      <div className="nodes-layout">
        <div className="node-cards">
          {nodes.map((node) => (
            <NodeCard key={node.id} node={node} fetchedAt={cluster.dataUpdatedAt} />
          ))}
          {nodes.length === 0 && !cluster.isPending ? (
            <Panel>
              <Empty>No node in the store.</Empty>
            </Panel>
          ) : null}
        </div>
        <div className="nodes-side">
          <ClusterTimeline nodes={nodes} />
          <Drills />
        </div>
      </div>
    </div>
  );
}

function NodeCard({ node, fetchedAt }: { node: NodeRow; fetchedAt: number }) {
  const now = useNow();
  const age = node.heartbeatAgeMs + Math.max(0, now - fetchedAt);
  return (
    <section
      className={`panel node-card${node.alive ? "" : " dead"}`}
      aria-labelledby={`node-${node.id}`}
      data-node={node.id}
    >
      <header className="panel-head">
        <h2 id={`node-${node.id}`}>
          <span className={`dot ${node.alive ? "ok" : "bad"}`} aria-hidden="true" /> {node.name}
        </h2>
        <div className="panel-actions">
          {node.leader ? <Badge tone="info">leader</Badge> : null}
          {node.alive ? <Badge tone="ok">alive</Badge> : <Badge tone="bad">dead</Badge>}
        </div>
      </header>
      <dl className="facts compact">
        <div>
          <dt>Id</dt>
          <dd className="mono small">{node.id}</dd>
        </div>
        <div>
          <dt>Host</dt>
          <dd>
            {node.host}:{node.pid}
          </dd>
        </div>
        <div>
          <dt>Version</dt>
          <dd className="num">{node.version}</dd>
        </div>
        <div>
          <dt>Uptime</dt>
          <dd title={new Date(node.startedAt).toLocaleString()}>{formatDuration(now - Date.parse(node.startedAt))}</dd>
        </div>
        <div>
          <dt>Heartbeat</dt>
          <dd className={age > 5000 ? "warn-text" : ""} title={new Date(node.heartbeatAt).toLocaleString()}>
            {formatDuration(age)} ago
          </dd>
        </div>
        <div>
          <dt>Running</dt>
          <dd>
            {(node.info.queues ?? []).length === 0
              ? "—"
              : (node.info.queues ?? []).map((q) => (
                  <span key={q.queue} className="per-node-item">
                    {q.queue}{" "}
                    <span className="num">
                      {q.running}/{q.concurrency}
                    </span>
                  </span>
                ))}
          </dd>
        </div>
      </dl>
      {node.info.tree === undefined ? null : (
        <details className="tree-box" open={node.alive}>
          <summary>Supervision tree</summary>
          <ul className="tree" aria-label={`Supervision tree of ${node.name}`}>
            <Tree node={node.info.tree} />
          </ul>
        </details>
      )}
    </section>
  );
}

function Tree({ node }: { node: ServiceNode }) {
  const restarts = node.restarts ?? 0;
  return (
    <li>
      <div className={`tree-row state-${node.state}`}>
        <span
          className={`dot ${node.state === "running" ? (restarts > 0 ? "warn" : "ok") : "bad"}`}
          aria-hidden="true"
        />
        <span className="tree-name">{node.name}</span>
        {node.strategy ? <span className="muted small">{node.strategy}</span> : null}
        {node.state !== "running" ? <Badge tone="bad">{node.state}</Badge> : null}
        {restarts > 0 ? (
          <Badge
            tone="warn"
            title={node.lastErrorAt ? `last at ${new Date(node.lastErrorAt).toLocaleString()}` : undefined}
          >
            {restarts} restart{restarts === 1 ? "" : "s"}
          </Badge>
        ) : null}
        {node.lastError ? (
          <span className="tree-error" title={node.lastError}>
            {node.lastError}
            {node.lastErrorAt ? (
              <span className="muted small">
                {" "}
                · <Time at={node.lastErrorAt} />
              </span>
            ) : null}
          </span>
        ) : null}
      </div>
      {node.children && node.children.length > 0 ? (
        <ul>
          {node.children.map((child) => (
            <Tree key={child.name} node={child} />
          ))}
        </ul>
      ) : null}
    </li>
  );
}

const TIMELINE_TEXT: Record<string, (d: Record<string, unknown>, name: (id: unknown) => string) => string> = {
  "leader.changed": (d, name) => `${name(d.leader)} became the leader`,
  "node.joined": (d) => `${String(d.name ?? d.node)} joined${d.version ? ` (v${String(d.version)})` : ""}`,
  "node.left": (d) =>
    `${String(d.name ?? d.node)} left: ${d.reason === "silent" ? "went silent (dead)" : String(d.reason ?? "")}`,
  "service.crashed": (d, name) => `${String(d.service)} crashed on ${name(d.node)}: ${String(d.error ?? "")}`,
  "service.restarted": (d, name) => `${String(d.service)} restarted on ${name(d.node)}`,
  "service.gave-up": (d, name) => `${String(d.supervisor)} gave up on ${name(d.node)}: ${String(d.error ?? "")}`,
  "queue.paused": (d, name) => `queue ${String(d.queue)} paused (from ${name(d.node)})`,
  "queue.resumed": (d, name) => `queue ${String(d.queue)} resumed (from ${name(d.node)})`,
  "queue.configured": (d) =>
    `queue ${String(d.queue)}: concurrency ${d.concurrency === null ? "default" : String(d.concurrency)}`,
  "task.stopped": (d, name) => `task #${String(d.taskId)} stopped on ${name(d.node)}: ${String(d.how ?? "")}`,
  "node.fenced": (d, name) =>
    `${name(d.node)} lost the store for ${String(d.silentMs)} ms and fenced itself off: stopped ${Array.isArray(d.tasks) ? d.tasks.length : 0} tasks, claims nothing`,
  "node.unfenced": (d, name) =>
    `${name(d.node)} reaches the store again and claims again after ${String(d.fencedMs)} ms fenced${Array.isArray(d.released) && d.released.length > 0 ? ` (${d.released.length} tasks handed back)` : ""}`,
};

const TONE: Record<string, string> = {
  "leader.changed": "info",
  "node.joined": "ok",
  "node.left": "bad",
  "service.crashed": "bad",
  "service.gave-up": "bad",
  "service.restarted": "warn",
  "node.fenced": "bad",
  "node.unfenced": "ok",
};

function ClusterTimeline({ nodes }: { nodes: NodeRow[] }) {
  const events = useTimeline();
  const [loadedAt] = useState(() => Date.now());
  const names = useMemo(() => new Map(nodes.map((n) => [n.id, n.name])), [nodes]);
  const name = (id: unknown) => names.get(String(id)) ?? String(id);
  // Before the page opened, the rows say when each node started (and the leader now).
  const joined = new Set(events.filter((e) => e.name === "node.joined").map((e) => String(e.data.node)));
  const earlier: TimelineEntry[] = nodes
    .filter((n) => Date.parse(n.startedAt) < loadedAt && !joined.has(n.id))
    .map((n) => ({ offset: -Date.parse(n.startedAt), name: "node.started", at: n.startedAt, data: { node: n.id } }));
  const all = [...events].reverse();
  return (
    <Panel title="Cluster timeline" actions={<span className="muted small">recent history, then live</span>}>
      {all.length === 0 && earlier.length === 0 ? <Empty>Nothing yet.</Empty> : null}
      <ol className="timeline cluster-timeline">
        {all.map((event) => (
          <li key={event.offset} className={`ev tone-${TONE[event.name] ?? "neutral"}`} data-event={event.name}>
            <span className="ev-time muted small">
              <Time at={event.at} />
            </span>
            <span className="ev-name">{event.name}</span>
            <span className="ev-text">
              {(TIMELINE_TEXT[event.name] ?? ((d) => JSON.stringify(d)))(event.data, name)}
            </span>
          </li>
        ))}
        {earlier
          .sort((a, b) => b.at.localeCompare(a.at))
          .map((event) => (
            <li key={event.offset} className="ev tone-neutral earlier">
              <span className="ev-time muted small">
                <Time at={event.at} />
              </span>
              <span className="ev-name">started</span>
              <span className="ev-text">
                {name(event.data.node)} started
                {nodes.find((n) => n.id === event.data.node)?.leader ? " (leads now)" : ""}
              </span>
            </li>
          ))}
      </ol>
    </Panel>
  );
}

function leaves(tree: ServiceNode | undefined, out: string[] = []): string[] {
  if (tree === undefined) return out;
  if (tree.children === undefined || tree.children.length === 0) out.push(tree.name);
  else for (const child of tree.children) leaves(child, out);
  return out;
}

/** Failure drills, shown only when this node says they are enabled (off by default). */
function Drills() {
  const node = useThisNode();
  const auth = useAuth();
  const services = useMemo(() => leaves(node.data?.tree), [node.data]);
  const [service, setService] = useState("");
  const [type, setType] = useState("");
  const [count, setCount] = useState("1");
  if (node.data?.faultInjection !== true || !auth.canAdmin) return null;
  const crash = async (event: FormEvent) => {
    event.preventDefault();
    const chosen = service || services[0];
    if (chosen === undefined) return;
    try {
      await api.fault({ kind: "crash-service", service: chosen });
      toast(`${chosen} crashed on ${node.data?.name}: watch its supervisor restart it`);
    } catch (error) {
      toastError(error);
    }
  };
  const failNext = async (event: FormEvent) => {
    event.preventDefault();
    try {
      await api.fault({ kind: "fail-next", type: type.trim(), count: Number(count) });
      toast(`The next ${count} attempt(s) of ${type.trim()} will fail`);
    } catch (error) {
      toastError(error);
    }
  };
  return (
    <Panel title="Failure drills" className="drills" actions={<Badge tone="warn">enabled on {node.data.name}</Badge>}>
      <ErrorNote error={node.error} />
      <form className="drill" onSubmit={crash}>
        <label className="field">
          <span>Crash a service on this node</span>
          <select value={service || services[0] || ""} onChange={(event) => setService(event.target.value)}>
            {services.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <Button type="submit" tone="danger">
          Crash it
        </Button>
      </form>
      <form className="drill" onSubmit={failNext}>
        <label className="field">
          <span>Fail the next attempts of a type</span>
          <input value={type} placeholder="demo.sleep" onChange={(event) => setType(event.target.value)} required />
        </label>
        <label className="field narrow">
          <span>How many</span>
          <input type="number" min={1} max={1000} value={count} onChange={(event) => setCount(event.target.value)} />
        </label>
        <Button type="submit" tone="danger" disabled={type.trim() === ""}>
          Make them fail
        </Button>
      </form>
    </Panel>
  );
}
