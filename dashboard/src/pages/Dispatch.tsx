/**
 * Dispatch's overview: counters (topics, publishers, deliveries delivered lately, retrying, failed), the delivery rate
 * (attempts per second by outcome over 15 minutes: the `dispatch` channel's `delivery.attempted` events, the recent
 * ones replayed from the log when the page opens, then live), and the topics (Postoffice's /topics page): each
 * one's origin host, recovery (switched here), publishers; created (POST /api/topics) and edited (PATCH).
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useSearch } from "@tanstack/react-router";
import { type FormEvent, useMemo, useState } from "react";
import type uPlot from "uplot";
import { useLatch } from "../data.ts";
import {
  countText,
  type DispatchEventData,
  dispatchApi,
  dispatchKeys,
  type Publisher,
  type Topic,
} from "../dispatch.ts";
import { formatCompact, formatNumber } from "../format.ts";
import { type LiveEvent, useLive, useThrottle } from "../live.tsx";
import type { Position } from "../types.ts";
import { TimeChart } from "../ui/chart.tsx";
import { useNow } from "../ui/clock.ts";
import { Badge, Button, Dialog, Empty, ErrorNote, Panel, Time, toast, toastError, StatCard } from "../ui/kit.tsx";
import { useAuth } from "../auth.tsx";
import { DispatchTabs, FormError } from "./dispatch-parts.tsx";

const WINDOW_S = 900;
const BUCKET_S = 10;
/** How far back in the log the chart starts (the server replays up to 10,000 log events). */
const HISTORY_EVENTS = 5000;

const RATE_SERIES = [
  { label: "delivered /s", color: "#2f9e44", fill: true },
  { label: "failed attempts /s", color: "#e03131" },
];

/** Per second; below 0.01 (the axis of an idle chart) nothing but the zero is labelled. */
const perSecond = (v: number) =>
  v === 0 ? "0" : v < 0.01 ? "" : v >= 10 ? v.toFixed(0) : v >= 0.1 ? v.toFixed(1) : v.toFixed(2);

type Buckets = Map<number, { delivered: number; failed: number }>;

export function useTopics() {
  return useQuery({ queryKey: dispatchKeys.topics, queryFn: dispatchApi.topics });
}

export function usePublishers(topic?: string) {
  return useQuery({ queryKey: dispatchKeys.publishers(topic), queryFn: () => dispatchApi.publishers(topic) });
}

/**
 * Deliveries per state (GET /api/dispatch/counts: each counted up to 10,000, whatever the table's size), and per
 * publisher when asked. Pages invalidate ["dispatch", "counts"] on the live events, throttled.
 */
export function useDeliveryCounts(publishers = false) {
  return useQuery({ queryKey: dispatchKeys.counts(publishers), queryFn: () => dispatchApi.counts(publishers) });
}

export function DispatchOverview() {
  const queryClient = useQueryClient();
  const auth = useAuth();
  const search = useSearch({ from: "/dispatch" });
  const navigate = useNavigate({ from: "/dispatch" });
  const topics = useTopics();
  const publishers = usePublishers();
  const counts = useDeliveryCounts();
  const [buckets, setBuckets] = useState<Buckets>(new Map());

  const refreshLists = useThrottle(() => {
    void queryClient.invalidateQueries({ queryKey: dispatchKeys.topics });
    void queryClient.invalidateQueries({ queryKey: ["dispatch", "publishers"] });
  }, 1000);
  const refreshCounts = useThrottle(
    () => void queryClient.invalidateQueries({ queryKey: ["dispatch", "counts"] }),
    1000,
  );

  // One subscription: from a little before the topics' snapshot (the chart's recent history), then live; events
  // after the snapshot are the cue to re-read the lists and counts.
  const first = useLatch<Position>(topics.data?.position ?? null);
  const since = first === null ? null : { epoch: first.epoch, offset: Math.max(0, first.offset - HISTORY_EVENTS) };
  useLive(first === null ? null : ["dispatch"], {
    since,
    onEvents: (events: LiveEvent[]) => {
      const attempts = events.filter((e) => e.name === "delivery.attempted");
      if (attempts.length > 0)
        setBuckets((previous) => {
          const next = new Map(previous);
          for (const event of attempts) {
            const at = Math.floor(Date.parse(event.at) / 1000 / BUCKET_S) * BUCKET_S;
            const bucket = next.get(at) ?? { delivered: 0, failed: 0 };
            const outcome = (event.data as DispatchEventData).outcome;
            next.set(at, {
              delivered: bucket.delivered + (outcome === "delivered" ? 1 : 0),
              failed: bucket.failed + (outcome === "delivered" ? 0 : 1),
            });
          }
          const horizon = Date.now() / 1000 - WINDOW_S - BUCKET_S;
          for (const at of next.keys()) if (at < horizon) next.delete(at);
          return next;
        });
      const fresh = events.filter((e) => e.offset > first!.offset);
      if (fresh.length === 0) return;
      refreshCounts();
      if (fresh.some((e) => e.name === "topic.changed" || e.name === "publisher.changed")) refreshLists();
    },
    onReload: () => {
      refreshLists();
      refreshCounts();
    },
  });

  const now = useNow();
  const end = Math.floor(now / 1000 / BUCKET_S) * BUCKET_S;
  const rate = useMemo(() => {
    const times: number[] = [];
    const delivered: number[] = [];
    const failed: number[] = [];
    for (let at = end - WINDOW_S; at <= end; at += BUCKET_S) {
      const b = buckets.get(at);
      times.push(at);
      delivered.push((b?.delivered ?? 0) / BUCKET_S);
      failed.push((b?.failed ?? 0) / BUCKET_S);
    }
    let sum = 0;
    for (const [at, b] of buckets) if (at >= end - WINDOW_S) sum += b.delivered;
    return { data: [times, delivered, failed] as uPlot.AlignedData, delivered: sum };
  }, [buckets, end]);

  const topicList = topics.data?.topics ?? [];
  const publisherList = publishers.data?.publishers ?? [];
  const byTopic = useMemo(() => {
    const map = new Map<string, Publisher[]>();
    for (const p of publisherList) map.set(p.topic, [...(map.get(p.topic) ?? []), p]);
    return map;
  }, [publisherList]);
  const disabled = publisherList.filter((p) => !p.active).length;
  const failedCount = counts.data?.deliveries.failed;
  const heldCount = counts.data?.deliveries.held;
  const editing =
    search.edit === undefined ? null : search.edit === "+" ? "new" : topicList.find((t) => t.name === search.edit);
  const closeEditor = () => void navigate({ search: {} });

  return (
    <div className="page page-dispatch">
      <header className="page-head">
        <h1>Dispatch</h1>
        <DispatchTabs />
        {auth.canWrite ? (
          <div className="head-actions">
            <Button tone="primary" onClick={() => void navigate({ search: { edit: "+" } })}>
              New topic
            </Button>
          </div>
        ) : null}
      </header>
      <div className="cards">
        <StatCard label="Topics" value={formatNumber(topicList.length)} />
        <StatCard
          label="Publishers"
          value={formatNumber(publisherList.length)}
          hint={
            disabled > 0
              ? `${formatNumber(disabled)} disabled · ${countText(heldCount)} held`
              : `all active · ${countText(heldCount)} held`
          }
          to="/dispatch/publishers"
        />
        <StatCard
          label="Delivered, last 15 min"
          value={formatCompact(rate.delivered)}
          hint="from the live stream"
          to="/dispatch/messages"
          search={{ state: "delivered" }}
        />
        <StatCard
          label="Retrying"
          value={countText(counts.data?.deliveries.scheduled)}
          hint="next attempt due"
          to="/dispatch/deliveries"
          search={{ state: "scheduled" }}
        />
        <StatCard
          label="Failed"
          value={countText(failedCount)}
          hint="out of attempts"
          tone={failedCount !== undefined && failedCount.count > 0 ? "bad" : undefined}
          to="/dispatch/deliveries"
          search={{ state: "failed" }}
        />
      </div>
      <Panel title="Delivery rate" actions={<span className="muted small">last 15 min · attempts per second</span>}>
        <ErrorNote error={counts.error} />
        <TimeChart
          data={rate.data}
          series={RATE_SERIES}
          label="Deliveries delivered and failed attempts per second"
          format={perSecond}
        />
      </Panel>
      <Panel title="Topics" actions={<span className="muted small">{pluralTopics(topicList.length)}</span>}>
        <ErrorNote error={topics.error ?? publishers.error} />
        {topicList.length === 0 ? (
          <Empty>
            {topics.isPending
              ? "Loading…"
              : "No topic yet. Messages are sent to a topic; its publishers deliver them to their receivers."}
          </Empty>
        ) : (
          <div className="scroll-x">
            <table className="grid topics-table">
              <thead>
                <tr>
                  <th scope="col">Topic</th>
                  <th scope="col">Recovery</th>
                  <th scope="col" className="num">
                    Publishers
                  </th>
                  <th scope="col" className="col-created">
                    Created
                  </th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {topicList.map((topic) => (
                  <TopicRow
                    key={topic.id}
                    topic={topic}
                    publishers={byTopic.get(topic.name) ?? []}
                    canWrite={auth.canWrite}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Panel>
      <TopicEditor
        key={search.edit ?? "closed"}
        open={editing !== null && editing !== undefined}
        topic={editing === "new" || editing === null || editing === undefined ? null : editing}
        onClose={closeEditor}
        onSaved={() => {
          closeEditor();
          void queryClient.invalidateQueries({ queryKey: dispatchKeys.topics });
        }}
      />
    </div>
  );
}

const pluralTopics = (n: number) => (n === 1 ? "1 topic" : `${formatNumber(n)} topics`);

function TopicRow({ topic, publishers, canWrite }: { topic: Topic; publishers: Publisher[]; canWrite: boolean }) {
  const queryClient = useQueryClient();
  const navigate = useNavigate({ from: "/dispatch" });
  const [busy, setBusy] = useState(false);
  const active = publishers.filter((p) => p.active).length;
  const toggleRecovery = async () => {
    setBusy(true);
    try {
      await dispatchApi.updateTopic(topic.name, { recovery_enabled: !topic.recovery_enabled });
      toast(`Recovery ${topic.recovery_enabled ? "off" : "on"} for ${topic.name}`);
      await queryClient.invalidateQueries({ queryKey: dispatchKeys.topics });
    } catch (error) {
      toastError(error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <tr data-topic={topic.name}>
      <th scope="row" className="topic-cell">
        <Link to="/dispatch/messages" search={{ topic: topic.name }} className="topic-name">
          {topic.name}
        </Link>
        <span className="muted small mono origin" title="Origin host: polled for lost messages while recovery is on">
          {topic.origin_host}
        </span>
      </th>
      <td>
        <label className="check switch" title="Poll the origin host every 30 s for messages it could not send">
          <input
            type="checkbox"
            role="switch"
            aria-checked={topic.recovery_enabled}
            checked={topic.recovery_enabled}
            disabled={!canWrite || busy}
            onChange={() => void toggleRecovery()}
            aria-label={`Recovery for ${topic.name}`}
          />
          <span className="small switch-text">{topic.recovery_enabled ? "on" : "off"}</span>
        </label>
      </td>
      <td className="num">
        <Link
          to="/dispatch/publishers"
          search={{ topic: topic.name }}
          aria-label={`${topic.name}: ${publishers.length} publishers`}
        >
          {publishers.length}
        </Link>
        {publishers.length > active ? (
          <>
            {" "}
            <Badge tone="warn">{publishers.length - active} off</Badge>
          </>
        ) : null}
      </td>
      <td className="col-created muted small">
        <Time at={topic.created_at} />
      </td>
      <td className="row-actions">
        {canWrite ? (
          <>
            <Link to="/dispatch/messages" search={{ send: topic.name }} className="btn btn-small">
              Send
            </Link>
            <Button small onClick={() => void navigate({ search: { edit: topic.name } })} label={`Edit ${topic.name}`}>
              Edit
            </Button>
          </>
        ) : null}
      </td>
    </tr>
  );
}

function TopicEditor({
  open,
  topic,
  onClose,
  onSaved,
}: {
  open: boolean;
  topic: Topic | null;
  onClose: () => void;
  onSaved: () => void;
}) {
  const [name, setName] = useState(topic?.name ?? "");
  const [originHost, setOriginHost] = useState(topic?.origin_host ?? "");
  const [recovery, setRecovery] = useState(topic?.recovery_enabled ?? false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (topic === null)
        await dispatchApi.createTopic({
          name: name.trim(),
          origin_host: originHost.trim(),
          recovery_enabled: recovery,
        });
      else await dispatchApi.updateTopic(topic.name, { origin_host: originHost.trim(), recovery_enabled: recovery });
      toast(`Topic ${topic?.name ?? name.trim()} saved`);
      onSaved();
    } catch (problem) {
      setError(problem);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog
      open={open}
      onClose={onClose}
      title={topic === null ? "New topic" : `Edit ${topic.name}`}
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button tone="primary" type="submit" form="topic-form" disabled={busy}>
            {topic === null ? "Create topic" : "Save"}
          </Button>
        </>
      }
    >
      <form id="topic-form" className="form-grid" onSubmit={submit} noValidate>
        <label className="field span-2">
          <span>Name</span>
          <input
            value={name}
            onChange={(e) => setName(e.target.value)}
            readOnly={topic !== null}
            placeholder="orders"
            autoComplete="off"
          />
        </label>
        <label className="field span-2">
          <span>Origin host</span>
          <input
            className="mono"
            value={originHost}
            onChange={(e) => setOriginHost(e.target.value)}
            placeholder="https://producer.internal/outbox/"
            aria-describedby="origin-help"
          />
          <small id="origin-help" className="muted">
            The producer's outbox, polled for messages it could not send while recovery is on.
          </small>
        </label>
        <div className="field span-2">
          <span>Recovery</span>
          <label className="check">
            <input type="checkbox" checked={recovery} onChange={(e) => setRecovery(e.target.checked)} />
            poll the origin host every 30 s
          </label>
        </div>
        <FormError error={error} />
      </form>
    </Dialog>
  );
}
