/**
 * Messages: a search (topic, an attribute `key=value`, words of the payload, a time range, a delivery state), newest
 * first, a page at a time (cursor pages, "Load more"); messages received since the page loaded are announced, not
 * pushed in under the pointer. A message sent from here (`?send=<topic>`) opens its own page.
 *
 * A message's page (`/dispatch/messages/:id`): its payload and attributes, and each delivery with every attempt (time,
 * the request's headers, status, latency, the response's first bytes, the error), following the `dispatch` channel
 * from the message's position; a failed or cancelled delivery is replayed, a retrying one retried now, an unfinished
 * one cancelled, here.
 */
import { useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useParams, useSearch } from "@tanstack/react-router";
import { type FormEvent, useMemo, useState } from "react";
import { ApiError } from "../api.ts";
import { useAuth } from "../auth.tsx";
import {
  type Attempt,
  CANCELLABLE,
  DELIVERY_STATES,
  type Delivery,
  type DispatchEventData,
  dispatchApi,
  dispatchKeys,
  isoToLocal,
  localToIso,
  type MessageFilter,
  REPLAYABLE,
  RETRYABLE_NOW,
  useDispatchCue,
} from "../dispatch.ts";
import { formatDuration, formatExact, localTimeZone, pluralize } from "../format.ts";
import { useThrottle } from "../live.tsx";
import type { DispatchMessageSearch } from "../search.ts";
import { Badge, Button, Dialog, Empty, ErrorNote, Json, Panel, Time, toast, toastError } from "../ui/kit.tsx";
import { useTopics } from "./Dispatch.tsx";
import { DeliveryBadge, DispatchTabs, excerpt, FormError, StatusBadge } from "./dispatch-parts.tsx";

const PAGE = 50;

function filterOf(search: DispatchMessageSearch): MessageFilter {
  return {
    topic: search.topic,
    attribute: search.attribute,
    q: search.q,
    from: search.from,
    to: search.to,
    state: search.state,
  };
}

export function DispatchMessages() {
  const queryClient = useQueryClient();
  const auth = useAuth();
  const search = useSearch({ from: "/dispatch/messages" });
  const navigate = useNavigate({ from: "/dispatch/messages" });
  const filter = useMemo(() => filterOf(search), [search]);
  const pages = useInfiniteQuery({
    queryKey: dispatchKeys.messages(filter),
    queryFn: ({ pageParam, signal }) => dispatchApi.messages(filter, pageParam, PAGE, signal),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const [fresh, setFresh] = useState(0);
  const position = pages.data?.pages[0]?.position;
  useDispatchCue(position, (events) => {
    let count = 0;
    for (const event of events) {
      if (event.name !== "dispatch.received") continue;
      const data = event.data as DispatchEventData;
      if (filter.topic === undefined || data.topic === filter.topic) count += data.messages?.length ?? 0;
    }
    if (count > 0) setFresh((n) => n + count);
  });
  const showFresh = () => {
    setFresh(0);
    void queryClient.resetQueries({ queryKey: dispatchKeys.messages(filter) });
  };
  const messages = pages.data?.pages.flatMap((p) => p.messages) ?? [];
  const filtered = Object.values(filter).some((v) => v !== undefined);
  return (
    <div className="page page-dispatch">
      <header className="page-head">
        <h1>Messages</h1>
        <DispatchTabs />
        {auth.canWrite ? (
          <div className="head-actions">
            <Button tone="primary" onClick={() => void navigate({ search: (s) => ({ ...s, send: s.topic ?? "+" }) })}>
              Send a message
            </Button>
          </div>
        ) : null}
      </header>
      <MessageFilters key={JSON.stringify(filter)} search={search} />
      <Panel
        title="Newest first"
        actions={
          fresh > 0 ? (
            <button type="button" className="new-pill" onClick={showFresh}>
              {pluralize(fresh, "new message")}
            </button>
          ) : (
            <span className="muted small">{pluralize(messages.length, "message")} shown</span>
          )
        }
      >
        <ErrorNote error={pages.error} />
        {messages.length === 0 ? (
          <Empty>
            {pages.isPending
              ? "Loading…"
              : filtered
                ? "No message matches."
                : "No message yet. Send one to a topic (POST /api/messages, or the button above)."}
          </Empty>
        ) : (
          <ul className="message-list">
            {messages.map((message) => (
              <li key={message.id} data-message={message.id}>
                <Link to="/dispatch/messages/$id" params={{ id: String(message.id) }} className="num row-link">
                  #{message.id}
                </Link>
                <span className="message-topic">{message.topic}</span>
                <code className="message-payload" title={excerpt(message.payload, 2000)}>
                  {excerpt(message.payload)}
                </code>
                <span className="message-attributes muted small" title={excerpt(message.attributes, 2000)}>
                  {Object.keys(message.attributes).length === 0 ? "" : excerpt(message.attributes, 60)}
                </span>
                <span className="muted small">
                  <Time at={message.received_at} />
                </span>
              </li>
            ))}
          </ul>
        )}
        {pages.hasNextPage ? (
          <div className="load-more">
            <Button onClick={() => void pages.fetchNextPage()} disabled={pages.isFetchingNextPage}>
              {pages.isFetchingNextPage ? "Loading…" : "Load more"}
            </Button>
          </div>
        ) : null}
      </Panel>
      <SendDialog
        key={search.send ?? "closed"}
        open={search.send !== undefined}
        topic={search.send === "+" ? undefined : search.send}
        onClose={() => void navigate({ search: (s) => ({ ...s, send: undefined }) })}
      />
    </div>
  );
}

function MessageFilters({ search }: { search: DispatchMessageSearch }) {
  const navigate = useNavigate({ from: "/dispatch/messages" });
  const topics = useTopics();
  const [topic, setTopic] = useState(search.topic ?? "");
  const [attribute, setAttribute] = useState(search.attribute ?? "");
  const [q, setQ] = useState(search.q ?? "");
  const [from, setFrom] = useState(isoToLocal(search.from));
  const [to, setTo] = useState(isoToLocal(search.to));
  const [state, setState] = useState(search.state ?? "");
  const attributeBad = attribute !== "" && !/^[^=]+=/.test(attribute);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (attributeBad) return;
    const text = (v: string) => (v.trim() === "" ? undefined : v.trim());
    void navigate({
      search: {
        topic: text(topic),
        attribute: text(attribute),
        q: text(q),
        from: localToIso(from),
        to: localToIso(to),
        state: text(state),
      },
    });
  };
  return (
    <form className="panel dispatch-filters" onSubmit={submit} aria-label="Search messages">
      <label className="field">
        <span>Topic</span>
        <select value={topic} onChange={(e) => setTopic(e.target.value)}>
          <option value="">any</option>
          {(topics.data?.topics ?? []).map((t) => (
            <option key={t.id} value={t.name}>
              {t.name}
            </option>
          ))}
        </select>
      </label>
      <label className="field">
        <span>Payload words</span>
        <input value={q} onChange={(e) => setQ(e.target.value)} placeholder="parcel 1234" data-search />
      </label>
      <label className="field">
        <span>Attribute</span>
        <input
          className="mono"
          value={attribute}
          onChange={(e) => setAttribute(e.target.value)}
          placeholder="key=value"
          aria-invalid={attributeBad}
        />
      </label>
      <label className="field">
        <span>Delivery state</span>
        <select value={state} onChange={(e) => setState(e.target.value)}>
          <option value="">any</option>
          {DELIVERY_STATES.map((s) => (
            <option key={s} value={s}>
              {s === "scheduled" ? "retrying (scheduled)" : s}
            </option>
          ))}
        </select>
      </label>
      <label className="field">
        <span>Received from</span>
        <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} />
      </label>
      <label className="field">
        <span>Until</span>
        <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} />
      </label>
      <div className="filter-actions">
        <Button type="submit" tone="primary">
          Search
        </Button>
        <Button onClick={() => void navigate({ search: {} })}>Clear</Button>
        <span className="muted small">{localTimeZone}</span>
      </div>
      {attributeBad ? <p className="error-note small">An attribute is key=value.</p> : null}
    </form>
  );
}

function SendDialog({ open, topic, onClose }: { open: boolean; topic: string | undefined; onClose: () => void }) {
  const navigate = useNavigate();
  const topics = useTopics();
  const names = (topics.data?.topics ?? []).map((t) => t.name);
  const [chosen, setChosen] = useState(topic ?? "");
  const [payload, setPayload] = useState('{\n  "hello": "world"\n}');
  const [attributes, setAttributes] = useState("{}");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const to = chosen === "" ? (names[0] ?? "") : chosen;
  const parse = (text: string, what: string) => {
    try {
      return JSON.parse(text === "" ? "{}" : text) as unknown;
    } catch (problem) {
      throw new Error(`${what} is not JSON: ${problem instanceof Error ? problem.message : String(problem)}`);
    }
  };
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const sent = await dispatchApi.send(
        to,
        parse(payload, "The payload"),
        parse(attributes, "The attributes") as Record<string, unknown>,
      );
      if (sent.id.length === 0) {
        toast(`Sent to ${to}, which has no publisher: nothing to deliver`, "info");
        onClose();
        return;
      }
      const { delivery } = await dispatchApi.delivery(sent.id[0]!);
      toast(`Message #${delivery.message_id} sent: ${pluralize(sent.id.length, "delivery", "deliveries")}`);
      void navigate({ to: "/dispatch/messages/$id", params: { id: String(delivery.message_id) } });
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
      wide
      title="Send a message"
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button tone="primary" type="submit" form="send-form" disabled={busy || to === ""}>
            Send
          </Button>
        </>
      }
    >
      <form id="send-form" className="form-grid" onSubmit={submit} noValidate>
        <label className="field span-2">
          <span>Topic</span>
          <select value={to} onChange={(e) => setChosen(e.target.value)}>
            {names.length === 0 ? <option value="">no topic yet</option> : null}
            {names.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label className="field span-2">
          <span>Payload (a JSON object)</span>
          <textarea
            className="mono"
            rows={6}
            value={payload}
            onChange={(e) => setPayload(e.target.value)}
            spellCheck={false}
          />
        </label>
        <label className="field span-2">
          <span>Attributes (a JSON object)</span>
          <textarea
            className="mono"
            rows={2}
            value={attributes}
            onChange={(e) => setAttributes(e.target.value)}
            spellCheck={false}
          />
        </label>
        <FormError error={error} />
      </form>
    </Dialog>
  );
}

// ---- one message ---------------------------------------------------------------------------------------------

export function DispatchMessage() {
  const { id: raw } = useParams({ from: "/dispatch/messages/$id" });
  const id = Number(raw);
  const valid = Number.isSafeInteger(id) && id > 0;
  const queryClient = useQueryClient();
  const detail = useQuery({
    queryKey: dispatchKeys.message(id),
    queryFn: () => dispatchApi.message(id),
    enabled: valid,
  });
  const refresh = useThrottle(() => void queryClient.invalidateQueries({ queryKey: dispatchKeys.message(id) }), 250);
  const deliveryIds = useMemo(() => new Set((detail.data?.deliveries ?? []).map((d) => d.id)), [detail.data]);
  useDispatchCue(detail.data?.position, (events) => {
    const ours = events.some((event) => {
      const data = event.data as DispatchEventData;
      if (data.message === id) return true;
      const ids = Array.isArray(data.deliveries) ? data.deliveries : [];
      return ids.some((d) => deliveryIds.has(d));
    });
    if (ours || events.length === 0) refresh();
  });
  if (!valid)
    return (
      <div className="page">
        <h1>Message {raw}</h1>
        <Empty>A message id is a whole number.</Empty>
      </div>
    );
  const back = (
    <Link to="/dispatch/messages" className="back">
      ← Messages
    </Link>
  );
  if (detail.error instanceof ApiError && detail.error.status === 404)
    return (
      <div className="page">
        {back}
        <h1>Message #{id}</h1>
        <Empty>There is no message #{id}.</Empty>
      </div>
    );
  if (detail.data === undefined)
    return (
      <div className="page">
        {back}
        <h1>Message #{id}</h1>
        <ErrorNote error={detail.error} />
        {detail.error ? null : <div className="skeleton-block" aria-busy="true" />}
      </div>
    );
  const { message, deliveries } = detail.data;
  const delivered = deliveries.filter((d) => d.state === "delivered").length;
  return (
    <div className="page page-dispatch page-message">
      {back}
      <header className="page-head">
        <h1>
          <span className="num">Message #{message.id}</span>
        </h1>
        <Link to="/dispatch/messages" search={{ topic: message.topic }}>
          <Badge tone="info">{message.topic}</Badge>
        </Link>
        <span className="muted small">
          received <Time at={message.received_at} />
        </span>
      </header>
      <Panel>
        <dl className="facts">
          <div>
            <dt>Topic</dt>
            <dd>{message.topic}</dd>
          </div>
          <div>
            <dt>Received</dt>
            <dd title={formatExact(message.received_at)}>{formatExact(message.received_at)}</dd>
          </div>
          <div>
            <dt>Deliveries</dt>
            <dd>
              {deliveries.length === 0 ? "none (no publisher then)" : `${delivered} of ${deliveries.length} delivered`}
            </dd>
          </div>
          <div>
            <dt>Idempotency key</dt>
            <dd className="mono">{message.idempotency_key ?? "—"}</dd>
          </div>
        </dl>
      </Panel>
      <div className="two-col">
        <Panel title="Payload">
          <Json value={message.payload} label="payload" />
        </Panel>
        <Panel title="Attributes">
          <Json value={message.attributes} label="attributes" />
        </Panel>
      </div>
      <h2 className="section-title">Deliveries</h2>
      {deliveries.length === 0 ? (
        <Panel>
          <Empty>The topic had no publisher when this message came: it was delivered to no one.</Empty>
        </Panel>
      ) : (
        deliveries.map((delivery) => (
          <DeliveryPanel key={delivery.id} delivery={delivery} messageId={message.id} topic={message.topic} />
        ))
      )}
    </div>
  );
}

export function DeliveryActions({ delivery, onDone }: { delivery: Delivery; onDone: () => void }) {
  const auth = useAuth();
  const [busy, setBusy] = useState(false);
  if (!auth.canWrite) return null;
  const act = async (what: () => Promise<unknown>, done: string) => {
    setBusy(true);
    try {
      await what();
      toast(done);
      onDone();
    } catch (error) {
      toastError(error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      {REPLAYABLE.includes(delivery.state) ? (
        <Button
          small
          tone="primary"
          disabled={busy}
          label={`Replay delivery ${delivery.id}`}
          title="Send it again, from the start of its retry schedule"
          onClick={() => act(() => dispatchApi.replay(delivery.id), `Delivery ${delivery.id} replayed`)}
        >
          Replay
        </Button>
      ) : null}
      {RETRYABLE_NOW.includes(delivery.state) && delivery.publisher.active ? (
        <Button
          small
          tone="primary"
          disabled={busy}
          label={`Retry delivery ${delivery.id} now`}
          title="Send it now rather than at its next attempt; no attempt is spent, its retry schedule goes on"
          onClick={() => act(() => dispatchApi.retryNow(delivery.id), `Delivery ${delivery.id} retried now`)}
        >
          Retry now
        </Button>
      ) : null}
      {CANCELLABLE.includes(delivery.state) ? (
        <Button
          small
          disabled={busy}
          label={`Cancel delivery ${delivery.id}`}
          onClick={() => act(() => dispatchApi.cancel(delivery.id), `Delivery ${delivery.id} cancelled`)}
        >
          Cancel
        </Button>
      ) : null}
    </>
  );
}

function DeliveryPanel({ delivery, messageId, topic }: { delivery: Delivery; messageId: number; topic: string }) {
  const queryClient = useQueryClient();
  const attempts = [...delivery.history].reverse();
  return (
    <section className="panel delivery" data-delivery={delivery.id} aria-label={`Delivery ${delivery.id}`}>
      <header className="panel-head">
        <h2>
          <DeliveryBadge state={delivery.state} />
          <span className="mono delivery-target" title={delivery.publisher.target}>
            {delivery.publisher.target}
          </span>
        </h2>
        <div className="panel-actions">
          <DeliveryActions
            delivery={delivery}
            onDone={() => void queryClient.invalidateQueries({ queryKey: dispatchKeys.message(messageId) })}
          />
        </div>
      </header>
      <dl className="facts compact">
        <div>
          <dt>Delivery</dt>
          <dd className="num">#{delivery.id}</dd>
        </div>
        <div>
          <dt>Publisher</dt>
          <dd>
            <Link to="/dispatch/publishers" search={{ topic }}>
              {delivery.publisher.type} #{delivery.publisher.id}
            </Link>
            {delivery.publisher.deleted ? " (deleted)" : delivery.publisher.active ? "" : " (disabled)"}
          </dd>
        </div>
        <div>
          <dt>Attempts</dt>
          <dd className="num">{delivery.attempts}</dd>
        </div>
        <div>
          <dt>{delivery.state === "delivered" ? "Delivered" : "Next attempt"}</dt>
          <dd>
            {delivery.state === "delivered" ? (
              <Time at={delivery.finished_at} />
            ) : delivery.next_attempt_at !== null && delivery.state === "scheduled" ? (
              <Time at={delivery.next_attempt_at} />
            ) : (
              <span className="muted">—</span>
            )}
          </dd>
        </div>
      </dl>
      {attempts.length === 0 ? (
        <p className="muted small">No attempt yet.</p>
      ) : (
        <ol className="attempts" aria-label={`Attempts of delivery ${delivery.id}`}>
          {attempts.map((attempt) => (
            <AttemptRow key={attempt.attempt} attempt={attempt} type={delivery.publisher.type} />
          ))}
        </ol>
      )}
    </section>
  );
}

function AttemptRow({ attempt, type }: { attempt: Attempt; type: string }) {
  const outcomeClass = attempt.outcome === "delivered" ? "completed" : "failed";
  return (
    <li className={`attempt outcome-${outcomeClass}`} data-attempt={attempt.attempt} data-outcome={attempt.outcome}>
      <div className="attempt-head">
        <strong>Attempt {attempt.attempt}</strong>
        <StatusBadge status={attempt.status} />
        <span className="muted small" title={formatExact(attempt.at)}>
          <Time at={attempt.at} /> · {formatDuration(attempt.duration_ms)}
        </span>
        <span className="badge tone-neutral">{attempt.outcome}</span>
        {attempt.next_attempt_at ? (
          <span className="muted small">
            next <Time at={attempt.next_attempt_at} />
          </span>
        ) : null}
      </div>
      {attempt.error ? <p className="attempt-error">{attempt.error}</p> : null}
      {attempt.response_body ? (
        <details className="attempt-more">
          <summary>Response body</summary>
          <pre className="stack">{attempt.response_body}</pre>
        </details>
      ) : null}
      <details className="attempt-more">
        <summary>Request headers</summary>
        <pre className="stack">
          {type === "http" ? `POST ${attempt.request.target}\n` : `exchange ${attempt.request.target}\n`}
          {Object.entries(attempt.request.headers)
            .map(([name, value]) => `${name}: ${value}`)
            .join("\n")}
        </pre>
      </details>
    </li>
  );
}
