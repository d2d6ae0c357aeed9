/**
 * What the dispatch pages share: their tabs, a delivery's state and an attempt's status as badges, a form's error
 * (the API's message and code, inline), and the dialog that replays a publisher's failures over a window.
 */
import { Link } from "@tanstack/react-router";
import { type FormEvent, useState } from "react";
import { ApiError } from "../api.ts";
import { type DeliveryState, dispatchApi, isoToLocal, localToIso, type Publisher, statusTone } from "../dispatch.ts";
import { localTimeZone, pluralize } from "../format.ts";
import { Badge, Button, Dialog, toast } from "../ui/kit.tsx";

const TABS = [
  { to: "/dispatch", label: "Topics" },
  { to: "/dispatch/publishers", label: "Publishers" },
  { to: "/dispatch/messages", label: "Messages" },
  { to: "/dispatch/deliveries", label: "Failing" },
] as const;

export function DispatchTabs() {
  return (
    <nav className="subnav" aria-label="Dispatch">
      {TABS.map((tab) => (
        <Link
          key={tab.to}
          to={tab.to}
          className="subnav-link"
          activeProps={{ className: "subnav-link active", "aria-current": "page" }}
          activeOptions={{ exact: tab.to === "/dispatch", includeSearch: false }}
        >
          {tab.label}
        </Link>
      ))}
    </nav>
  );
}

const STATE_HINT: Record<DeliveryState, string> = {
  scheduled: "waiting for its next attempt: retry now to send it at once",
  pending: "being sent",
  held: "its publisher is disabled: it waits, spending nothing",
  delivered: "the receiver answered 2xx",
  failed: "out of attempts: replay it to send it again",
  discarded: "its publisher was deleted",
  cancelled: "cancelled by a person: replay it to send it again",
};

export function DeliveryBadge({ state }: { state: DeliveryState }) {
  return (
    <span className={`badge dstate-${state}`} title={STATE_HINT[state]} data-delivery-state={state}>
      {state === "scheduled" ? "retrying" : state}
    </span>
  );
}

export function StatusBadge({ status }: { status: number | null }) {
  return <Badge tone={statusTone(status)}>{status === null ? "no answer" : `HTTP ${status}`}</Badge>;
}

/** The API's refusal of a form, inline: its message, and its code for whoever reads the logs. */
export function FormError({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <p className="error-note form-error span-2" role="alert">
      {message}
      {error instanceof ApiError ? <span className="muted small"> ({error.code})</span> : null}
    </p>
  );
}

/** Replays every failed or cancelled delivery of `publisher` whose message was received in [since, until). */
export function ReplayWindowDialog({
  publisher,
  open,
  onClose,
}: {
  publisher: Publisher | null;
  open: boolean;
  onClose: () => void;
}) {
  const [since, setSince] = useState(() => isoToLocal(new Date(Date.now() - 86_400_000).toISOString()));
  const [until, setUntil] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (publisher === null) return;
    const from = localToIso(since);
    if (from === undefined) return setError(new Error("Choose when the window starts"));
    setBusy(true);
    setError(null);
    try {
      const { replayed } = await dispatchApi.replayWindow(publisher.id, from, localToIso(until));
      toast(`${pluralize(replayed, "delivery", "deliveries")} replayed`);
      onClose();
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
      title="Replay a window"
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button tone="primary" type="submit" form="replay-window" disabled={busy}>
            Replay
          </Button>
        </>
      }
    >
      <p className="muted">
        Sends again every failed or cancelled delivery to <span className="mono">{publisher?.target}</span> of the
        messages received in the window, from the start of its retry schedule.
      </p>
      <form id="replay-window" className="form-grid" onSubmit={submit}>
        <label className="field">
          <span>Received from</span>
          <input type="datetime-local" value={since} onChange={(e) => setSince(e.target.value)} required />
        </label>
        <label className="field">
          <span>Until (empty: now)</span>
          <input type="datetime-local" value={until} onChange={(e) => setUntil(e.target.value)} />
        </label>
        <small className="muted span-2">Times in {localTimeZone}.</small>
        <FormError error={error} />
      </form>
    </Dialog>
  );
}

/** A payload or attributes object in one line, for a list. */
export function excerpt(value: unknown, length = 140): string {
  const text = JSON.stringify(value) ?? "";
  return text.length > length ? `${text.slice(0, length)}…` : text;
}
