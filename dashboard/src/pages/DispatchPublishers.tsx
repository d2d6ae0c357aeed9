/**
 * Publishers (Postoffice's /publishers): each one's topic, target, type, whether it sends, its retry policy and
 * signing; created (POST /api/publishers: an http URL or an AMQP exchange, timeout, retry mode, a signing secret
 * made or given), edited (PATCH: topic and type stay), enabled and disabled, its secret shown or rotated, its failures
 * of a window replayed, deleted (after a confirm); how many of its deliveries failed, wait for a retry or are held
 * (GET /api/dispatch/counts, re-read as deliveries change). `?topic=` shows one topic's; `?edit=` is the open editor.
 */
import { useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useSearch } from "@tanstack/react-router";
import { type FormEvent, useState } from "react";
import { useAuth } from "../auth.tsx";
import {
  countText,
  dispatchApi,
  type Publisher,
  type PublisherInput,
  type PublisherType,
  type RetryMode,
  type StateCounts,
  useDispatchCue,
} from "../dispatch.ts";
import { formatDuration } from "../format.ts";
import { useThrottle } from "../live.tsx";
import { Badge, Button, Dialog, Empty, ErrorNote, Panel, Time, toast, toastError } from "../ui/kit.tsx";
import { useDeliveryCounts, usePublishers, useTopics } from "./Dispatch.tsx";
import { DispatchTabs, FormError, ReplayWindowDialog } from "./dispatch-parts.tsx";

export function DispatchPublishers() {
  const queryClient = useQueryClient();
  const auth = useAuth();
  const search = useSearch({ from: "/dispatch/publishers" });
  const navigate = useNavigate({ from: "/dispatch/publishers" });
  const topics = useTopics();
  const publishers = usePublishers(search.topic);
  const counts = useDeliveryCounts(true);
  const refresh = useThrottle(() => void queryClient.invalidateQueries({ queryKey: ["dispatch", "publishers"] }), 500);
  const refreshCounts = useThrottle(
    () => void queryClient.invalidateQueries({ queryKey: ["dispatch", "counts"] }),
    1000,
  );
  useDispatchCue(publishers.data?.position, (events) => {
    if (events.length === 0 || events.some((e) => e.name === "publisher.changed" || e.name === "delivery.attempted"))
      refresh();
    if (events.length === 0 || events.some((e) => e.name.startsWith("delivery.") || e.name === "dispatch.received"))
      refreshCounts();
  });
  const countsOf = new Map((counts.data?.publishers ?? []).map((p) => [p.id, p.deliveries]));
  const list = publishers.data?.publishers ?? [];
  const editing =
    search.edit === undefined ? null : search.edit === "+" ? "new" : list.find((p) => String(p.id) === search.edit);
  const closeEditor = () => void navigate({ search: (s) => ({ ...s, edit: undefined }) });
  return (
    <div className="page page-dispatch">
      <header className="page-head">
        <h1>Publishers</h1>
        <DispatchTabs />
        <div className="head-actions">
          <label className="field inline">
            <span>Topic</span>
            <select
              value={search.topic ?? ""}
              onChange={(e) => void navigate({ search: { topic: e.target.value || undefined } })}
            >
              <option value="">all</option>
              {(topics.data?.topics ?? []).map((t) => (
                <option key={t.id} value={t.name}>
                  {t.name}
                </option>
              ))}
            </select>
          </label>
          {auth.canWrite ? (
            <Button tone="primary" onClick={() => void navigate({ search: (s) => ({ ...s, edit: "+" }) })}>
              New publisher
            </Button>
          ) : null}
        </div>
      </header>
      <ErrorNote error={publishers.error} />
      {list.length === 0 ? (
        <Panel>
          <Empty>
            {publishers.isPending
              ? "Loading…"
              : `No publisher${search.topic ? ` on ${search.topic}` : ""} yet. A publisher delivers each message of its topic to a URL or an AMQP exchange.`}
          </Empty>
        </Panel>
      ) : (
        <div className="publisher-list">
          {list.map((publisher) => (
            <PublisherRow
              key={publisher.id}
              publisher={publisher}
              counts={countsOf.get(publisher.id)}
              canWrite={auth.canWrite}
              canAdmin={auth.canAdmin}
            />
          ))}
        </div>
      )}
      <PublisherEditor
        key={search.edit ?? "closed"}
        open={editing !== null && editing !== undefined}
        publisher={editing === "new" || editing === null || editing === undefined ? null : editing}
        topics={(topics.data?.topics ?? []).map((t) => t.name)}
        defaultTopic={search.topic}
        onClose={closeEditor}
        onSaved={() => {
          closeEditor();
          void queryClient.invalidateQueries({ queryKey: ["dispatch", "publishers"] });
        }}
      />
    </div>
  );
}

/** A publisher's failed deliveries (always, a link to them), and those retrying or held when there are any. */
function DeliveryCounts({ publisher, counts }: { publisher: number; counts: StateCounts | undefined }) {
  const shown = [
    { state: "failed", label: "failed" },
    { state: "scheduled", label: "retrying" },
    { state: "held", label: "held" },
  ] as const;
  return (
    <span className="publisher-counts">
      {shown.map(({ state, label }) => {
        const count = counts?.[state];
        if (state !== "failed" && (count === undefined || count.count === 0)) return null;
        return (
          <Link
            key={state}
            to="/dispatch/deliveries"
            search={{ state, publisher: String(publisher) }}
            className={state === "failed" && count !== undefined && count.count > 0 ? "bad-text" : undefined}
            data-count={state}
          >
            {countText(count)} {label}
          </Link>
        );
      })}
    </span>
  );
}

function retryText(p: Publisher): string {
  if (p.retry_mode === "fixed") return `every ${formatDuration(p.seconds_retry * 1000)}, ${p.max_attempts ?? 100}×`;
  const attempts = p.max_attempts ?? 8;
  return `schedule, ${attempts} attempt${attempts === 1 ? "" : "s"}`;
}

function PublisherRow({
  publisher,
  counts,
  canWrite,
  canAdmin,
}: {
  publisher: Publisher;
  counts: StateCounts | undefined;
  canWrite: boolean;
  /** Deleting a publisher takes the admin scope (src/http/auth.ts ADMIN_ROUTES). */
  canAdmin: boolean;
}) {
  const queryClient = useQueryClient();
  const navigate = useNavigate({ from: "/dispatch/publishers" });
  const [busy, setBusy] = useState(false);
  const [dialog, setDialog] = useState<null | "delete" | "rotate" | "replay">(null);
  const [secret, setSecret] = useState<{ text: string | null; rotated: boolean } | null>(null);
  const name = `publisher ${publisher.id}`;
  const act = async (what: () => Promise<unknown>, done: string) => {
    setBusy(true);
    try {
      await what();
      toast(done);
      await queryClient.invalidateQueries({ queryKey: ["dispatch", "publishers"] });
    } catch (error) {
      toastError(error);
    } finally {
      setBusy(false);
    }
  };
  const rotate = async () => {
    setBusy(true);
    try {
      const rotated = await dispatchApi.rotateSecret(publisher.id);
      setSecret({ text: rotated.secret, rotated: true });
      setDialog(null);
      await queryClient.invalidateQueries({ queryKey: ["dispatch", "publishers"] });
    } catch (error) {
      toastError(error);
    } finally {
      setBusy(false);
    }
  };
  const reveal = async () => {
    try {
      setSecret({ text: (await dispatchApi.secret(publisher.id)).secret, rotated: false });
    } catch (error) {
      toastError(error);
    }
  };
  return (
    <section
      className={`panel publisher${publisher.active ? "" : " disabled"}`}
      data-publisher={publisher.id}
      aria-label={`Publisher ${publisher.id}: ${publisher.target}`}
    >
      <div className="publisher-main">
        <div className="publisher-title">
          <Badge tone="neutral">{publisher.type}</Badge>
          <span className="publisher-target mono" title={publisher.target}>
            {publisher.target}
          </span>
        </div>
        <div className="publisher-what small">
          <Link to="/dispatch/messages" search={{ topic: publisher.topic }}>
            {publisher.topic}
          </Link>
          {publisher.active ? (
            <Badge tone="ok">active</Badge>
          ) : (
            <Badge tone="warn" title={publisher.disabled_reason ?? undefined}>
              disabled
            </Badge>
          )}
          {publisher.disabled_reason && !publisher.active ? (
            <span className="muted">{publisher.disabled_reason}</span>
          ) : null}
          {publisher.failing_since ? (
            <Link
              to="/dispatch/deliveries"
              search={{ state: "failed", publisher: String(publisher.id) }}
              className="warn-text"
              title="Its failing deliveries"
            >
              failing since <Time at={publisher.failing_since} />
            </Link>
          ) : null}
          <DeliveryCounts publisher={publisher.id} counts={counts} />
        </div>
        <dl className="publisher-facts small">
          <div>
            <dt>Timeout</dt>
            <dd>{publisher.seconds_timeout} s</dd>
          </div>
          <div>
            <dt>Retries</dt>
            <dd>{retryText(publisher)}</dd>
          </div>
          <div>
            <dt>Signing</dt>
            <dd data-signing={publisher.signing.secrets}>
              {publisher.signing.secrets === 0 ? (
                "unsigned"
              ) : (
                <>
                  {publisher.signing.secrets === 1 ? "1 secret" : `${publisher.signing.secrets} secrets`}
                  {canWrite ? (
                    <>
                      {" · "}
                      <button
                        type="button"
                        className="link"
                        aria-label={`Show the secret of ${name}`}
                        onClick={() => void reveal()}
                      >
                        show
                      </button>
                    </>
                  ) : null}
                </>
              )}
              {publisher.signing.rotated_until ? (
                <span className="muted fact-note" title="The old secret signs beside the new one until then">
                  old one expires <Time at={publisher.signing.rotated_until} />
                </span>
              ) : null}
            </dd>
          </div>
        </dl>
      </div>
      {canWrite ? (
        <div className="publisher-actions">
          <Button
            small
            disabled={busy}
            label={`${publisher.active ? "Disable" : "Enable"} ${name}`}
            onClick={() =>
              act(
                () => dispatchApi.updatePublisher(publisher.id, { active: !publisher.active }),
                `${publisher.target} ${publisher.active ? "disabled: its deliveries wait" : "enabled"}`,
              )
            }
          >
            {publisher.active ? "Disable" : "Enable"}
          </Button>
          <Button
            small
            label={`Edit ${name}`}
            onClick={() => void navigate({ search: (s) => ({ ...s, edit: String(publisher.id) }) })}
          >
            Edit
          </Button>
          <Button small disabled={busy} label={`Rotate the secret of ${name}`} onClick={() => setDialog("rotate")}>
            Rotate secret
          </Button>
          <Button small label={`Replay a window of ${name}`} onClick={() => setDialog("replay")}>
            Replay…
          </Button>
          {canAdmin ? (
            <Button small tone="ghost" label={`Delete ${name}`} onClick={() => setDialog("delete")}>
              Delete
            </Button>
          ) : null}
        </div>
      ) : null}
      <Dialog
        open={dialog === "delete"}
        onClose={() => setDialog(null)}
        title="Delete this publisher?"
        footer={
          <>
            <Button onClick={() => setDialog(null)}>Keep it</Button>
            <Button
              tone="danger"
              disabled={busy}
              onClick={() =>
                act(() => dispatchApi.deletePublisher(publisher.id), `${publisher.target} deleted`).then(() =>
                  setDialog(null),
                )
              }
            >
              Delete publisher
            </Button>
          </>
        }
      >
        <p>
          <span className="mono">{publisher.target}</span> gets no new message of {publisher.topic}, and its waiting
          deliveries are discarded. Delivered ones stay in the messages' history.
        </p>
      </Dialog>
      <Dialog
        open={dialog === "rotate"}
        onClose={() => setDialog(null)}
        title="Rotate the signing secret?"
        footer={
          <>
            <Button onClick={() => setDialog(null)}>Cancel</Button>
            <Button tone="primary" disabled={busy} onClick={() => void rotate()}>
              Rotate
            </Button>
          </>
        }
      >
        <p>
          A new secret signs from now on.{" "}
          {publisher.signing.secrets > 0
            ? "The current one keeps signing beside it for a day, so the receiver can switch without losing a message."
            : "This publisher signs nothing yet: its requests carry Standard Webhooks signatures from now on."}
        </p>
      </Dialog>
      <Dialog
        open={secret !== null}
        onClose={() => setSecret(null)}
        title={secret?.rotated ? "New signing secret" : "Signing secret"}
        footer={<Button onClick={() => setSecret(null)}>Done</Button>}
      >
        {secret?.rotated ? <p>Give it to the receiver; the old one stops signing in a day.</p> : null}
        <p className="secret mono" data-secret>
          {secret?.text ?? "This publisher does not sign."}
        </p>
      </Dialog>
      <ReplayWindowDialog publisher={publisher} open={dialog === "replay"} onClose={() => setDialog(null)} />
    </section>
  );
}

function numberOrNull(text: string): number | null {
  return text.trim() === "" ? null : Number(text);
}

function PublisherEditor({
  open,
  publisher,
  topics,
  defaultTopic,
  onClose,
  onSaved,
}: {
  open: boolean;
  publisher: Publisher | null;
  topics: string[];
  defaultTopic: string | undefined;
  onClose: () => void;
  onSaved: () => void;
}) {
  const [topic, setTopic] = useState(publisher?.topic ?? defaultTopic ?? topics[0] ?? "");
  const [type, setType] = useState<PublisherType>(publisher?.type ?? "http");
  const [target, setTarget] = useState(publisher?.target ?? "");
  const [timeout, setTimeoutText] = useState(String(publisher?.seconds_timeout ?? 5));
  const [retryMode, setRetryMode] = useState<RetryMode>(publisher?.retry_mode ?? "schedule");
  const [secondsRetry, setSecondsRetry] = useState(String(publisher?.seconds_retry ?? 30));
  const [maxAttempts, setMaxAttempts] = useState(String(publisher?.max_attempts ?? ""));
  const [concurrency, setConcurrency] = useState(String(publisher?.concurrency ?? ""));
  const [active, setActive] = useState(publisher?.active ?? true);
  const [signing, setSigning] = useState<"none" | "make" | "own">("none");
  const [ownSecret, setOwnSecret] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [made, setMade] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const input: PublisherInput = {
      target: target.trim(),
      active,
      seconds_timeout: Number(timeout),
      seconds_retry: Number(secondsRetry),
      retry_mode: retryMode,
      max_attempts: numberOrNull(maxAttempts),
      concurrency: numberOrNull(concurrency),
    };
    try {
      if (publisher === null) {
        const secret = signing === "make" ? true : signing === "own" ? ownSecret.trim() : undefined;
        const created = await dispatchApi.createPublisher({
          ...input,
          topic,
          type,
          ...(secret === undefined ? {} : { secret }),
        });
        toast(`Publisher for ${topic} created`);
        if (created.data.secret !== undefined) {
          setMade(created.data.secret);
          return;
        }
      } else {
        await dispatchApi.updatePublisher(publisher.id, input);
        toast(`${input.target} saved`);
      }
      onSaved();
    } catch (problem) {
      setError(problem);
    } finally {
      setBusy(false);
    }
  };
  if (made !== null)
    return (
      <Dialog open={open} onClose={onSaved} title="Signing secret" footer={<Button onClick={onSaved}>Done</Button>}>
        <p>Requests are signed with this secret (Standard Webhooks). Give it to the receiver:</p>
        <p className="secret mono" data-secret>
          {made}
        </p>
        <p className="muted small">It can be shown again from the publisher's row (Signing · show).</p>
      </Dialog>
    );
  return (
    <Dialog
      open={open}
      onClose={onClose}
      wide
      title={publisher === null ? "New publisher" : `Edit publisher ${publisher.id}`}
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button tone="primary" type="submit" form="publisher-form" disabled={busy}>
            {publisher === null ? "Create publisher" : "Save"}
          </Button>
        </>
      }
    >
      <form id="publisher-form" className="form-grid" onSubmit={submit} noValidate>
        <label className="field">
          <span>Topic</span>
          <select value={topic} onChange={(e) => setTopic(e.target.value)} disabled={publisher !== null}>
            {topics.length === 0 ? <option value="">no topic yet</option> : null}
            {topics.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Type</span>
          <select value={type} onChange={(e) => setType(e.target.value as PublisherType)} disabled={publisher !== null}>
            <option value="http">http: POST to a URL</option>
            <option value="amqp">amqp: publish to an exchange</option>
          </select>
        </label>
        <label className="field span-2">
          <span>{type === "http" ? "Target URL" : "Exchange"}</span>
          <input
            className="mono"
            value={target}
            onChange={(e) => setTarget(e.target.value)}
            placeholder={type === "http" ? "https://receiver.example/webhooks" : "orders.events"}
            autoComplete="off"
            spellCheck={false}
          />
        </label>
        <label className="field">
          <span>Timeout (seconds)</span>
          <input type="number" min={1} value={timeout} onChange={(e) => setTimeoutText(e.target.value)} />
        </label>
        <label className="field">
          <span>Retry mode</span>
          <select value={retryMode} onChange={(e) => setRetryMode(e.target.value as RetryMode)}>
            <option value="schedule">schedule: 5 s, 5 min… 10 h (about a day)</option>
            <option value="fixed">fixed: every N seconds</option>
          </select>
        </label>
        {retryMode === "fixed" ? (
          <label className="field">
            <span>Retry every (seconds)</span>
            <input type="number" min={1} value={secondsRetry} onChange={(e) => setSecondsRetry(e.target.value)} />
          </label>
        ) : null}
        <label className="field">
          <span>Max attempts</span>
          <input
            type="number"
            min={1}
            value={maxAttempts}
            onChange={(e) => setMaxAttempts(e.target.value)}
            placeholder={retryMode === "fixed" ? "100" : "8"}
          />
        </label>
        <label className="field">
          <span>Concurrency per node</span>
          <input
            type="number"
            min={1}
            value={concurrency}
            onChange={(e) => setConcurrency(e.target.value)}
            placeholder="no limit"
          />
        </label>
        <div className="field">
          <span>Active</span>
          <label className="check">
            <input type="checkbox" checked={active} onChange={(e) => setActive(e.target.checked)} />
            sends (disabled: deliveries wait)
          </label>
        </div>
        {publisher === null ? (
          <div className="field span-2">
            <span>Signing</span>
            <div className="radios">
              {(
                [
                  ["none", "unsigned"],
                  ["make", "make a secret"],
                  ["own", "use my secret"],
                ] as const
              ).map(([value, text]) => (
                <label key={value} className="check">
                  <input
                    type="radio"
                    name="signing"
                    value={value}
                    checked={signing === value}
                    onChange={() => setSigning(value)}
                  />
                  {text}
                </label>
              ))}
            </div>
            {signing === "own" ? (
              <input
                className="mono"
                value={ownSecret}
                onChange={(e) => setOwnSecret(e.target.value)}
                placeholder="whsec_…"
                aria-label="Signing secret"
                spellCheck={false}
              />
            ) : null}
          </div>
        ) : null}
        <FormError error={error} />
      </form>
    </Dialog>
  );
}
