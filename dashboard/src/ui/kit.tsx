/** The dashboard's small parts: times, states, progress, JSON, dialogs, buttons, toasts. */
import { Link, type LinkProps } from "@tanstack/react-router";
import { type ReactNode, useEffect, useId, useRef, useState, useSyncExternalStore } from "react";
import { formatDuration, formatExact, formatRelative, formatUtc } from "../format.ts";
import type { TaskState } from "../types.ts";
import { useNow } from "./clock.ts";

/** A relative time ("4 s ago") with the exact local and UTC times on hover. */
export function Time({ at, prefix }: { at: string | number | null | undefined; prefix?: string }) {
  const now = useNow();
  if (at === null || at === undefined) return <span className="muted">—</span>;
  const date = new Date(at);
  return (
    <time dateTime={date.toISOString()} title={`${formatExact(date)}\n${formatUtc(date)}`}>
      {prefix}
      {formatRelative(date, now)}
    </time>
  );
}

export function StateBadge({ state }: { state: TaskState | string }) {
  return <span className={`badge state-${state}`}>{state}</span>;
}

export function Badge({ tone = "neutral", children, title }: { tone?: string; children: ReactNode; title?: string }) {
  return (
    <span className={`badge tone-${tone}`} title={title}>
      {children}
    </span>
  );
}

/** A progress bar with its percent, and the rate and ETA when known. */
export function ProgressBar({
  percent,
  rate,
  eta,
  compact,
  label,
}: {
  percent: number;
  rate?: number | null;
  eta?: number | null;
  compact?: boolean;
  label: string;
}) {
  const clamped = Math.max(0, Math.min(100, percent));
  const details =
    rate !== null && rate !== undefined && rate > 0
      ? `${rate >= 10 ? rate.toFixed(0) : rate.toFixed(1)} %/s · ETA ${formatDuration(eta ?? null)}`
      : null;
  return (
    <div className={compact ? "progress compact" : "progress"}>
      <div
        className="progress-track"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(clamped)}
      >
        <div className="progress-fill" style={{ transform: `scaleX(${clamped / 100})` }} />
      </div>
      <span className="progress-text">
        <span className="num">{clamped < 10 ? clamped.toFixed(1) : Math.round(clamped)}%</span>
        {details === null ? null : <span className="muted"> · {details}</span>}
      </span>
    </div>
  );
}

export function Json({ value, label }: { value: unknown; label: string }) {
  const text = value === undefined ? "undefined" : JSON.stringify(value, null, 2);
  const long = text.length > 2000;
  const [open, setOpen] = useState(!long);
  return (
    <div className="json" data-label={label}>
      <pre className={open ? "" : "clipped"}>{open ? text : `${text.slice(0, 2000)}…`}</pre>
      {long ? (
        <button type="button" className="link" onClick={() => setOpen(!open)}>
          {open ? "Show less" : `Show all ${formatBytes(text.length)}`}
        </button>
      ) : null}
    </div>
  );
}

function formatBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function Button({
  children,
  onClick,
  tone = "default",
  disabled,
  title,
  type = "button",
  small,
  label,
  form,
}: {
  form?: string;
  children: ReactNode;
  onClick?: () => void;
  tone?: "default" | "primary" | "danger" | "ghost";
  disabled?: boolean;
  title?: string;
  type?: "button" | "submit";
  small?: boolean;
  label?: string;
}) {
  return (
    <button
      type={type}
      className={`btn btn-${tone}${small ? " btn-small" : ""}`}
      onClick={onClick}
      disabled={disabled}
      title={title}
      aria-label={label}
      form={form}
    >
      {children}
    </button>
  );
}

/** A modal dialog (the platform's <dialog>: focus trap and Escape for free). */
export function Dialog({
  open,
  onClose,
  title,
  children,
  footer,
  wide,
}: {
  open: boolean;
  onClose: () => void;
  title: string;
  children: ReactNode;
  footer?: ReactNode;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (dialog === null) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      className={wide ? "dialog wide" : "dialog"}
      aria-labelledby={titleId}
      onClose={onClose}
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
    >
      {open ? (
        <>
          <header className="dialog-head">
            <h2 id={titleId}>{title}</h2>
            <button type="button" className="icon-btn" aria-label="Close" onClick={onClose}>
              ×
            </button>
          </header>
          <div className="dialog-body">{children}</div>
          {footer === undefined ? null : <footer className="dialog-foot">{footer}</footer>}
        </>
      ) : null}
    </dialog>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function Panel({
  title,
  actions,
  children,
  className,
}: {
  title?: ReactNode;
  actions?: ReactNode;
  children: ReactNode;
  className?: string;
}) {
  return (
    <section className={`panel${className ? ` ${className}` : ""}`}>
      {title === undefined && actions === undefined ? null : (
        <header className="panel-head">
          {title === undefined ? <span /> : <h2>{title}</h2>}
          {actions === undefined ? null : <div className="panel-actions">{actions}</div>}
        </header>
      )}
      {children}
    </section>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <p className="error-note" role="alert">
      {message}
    </p>
  );
}

// ---- toasts -----------------------------------------------------------------------------------------------

export type Toast = { id: number; tone: "ok" | "error" | "info"; text: string };
let toasts: Toast[] = [];
let nextToast = 1;
const toastListeners = new Set<() => void>();

export function toast(text: string, tone: Toast["tone"] = "ok"): void {
  const id = nextToast++;
  toasts = [...toasts.slice(-3), { id, tone, text }];
  for (const listener of toastListeners) listener();
  setTimeout(() => {
    toasts = toasts.filter((t) => t.id !== id);
    for (const listener of toastListeners) listener();
  }, 5000);
}

export function toastError(error: unknown): void {
  toast(error instanceof Error ? error.message : String(error), "error");
}

export function Toasts() {
  const list = useSyncExternalStore(
    (listener) => {
      toastListeners.add(listener);
      return () => toastListeners.delete(listener);
    },
    () => toasts,
  );
  return (
    <div className="toasts" role="status" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} className={`toast toast-${t.tone}`}>
          {t.text}
        </div>
      ))}
    </div>
  );
}

export function Duration({ ms }: { ms: number | null | undefined }) {
  return <span className="num">{formatDuration(ms)}</span>;
}

/** A figure with its label and a hint under it; a link to where its items are listed when `to` is given. */
export function StatCard({
  label,
  value,
  hint,
  tone,
  to,
  search,
}: {
  label: string;
  value: string;
  hint?: string;
  tone?: "bad";
  to?: LinkProps["to"];
  search?: Record<string, string>;
}) {
  const body = (
    <>
      <span className="card-label">{label}</span>
      <span className={`card-value num${tone === "bad" ? " bad" : ""}`}>{value}</span>
      <span className="card-hint muted small">{hint ?? " "}</span>
    </>
  );
  return to === undefined ? (
    <div className="card">{body}</div>
  ) : (
    <Link className="card card-link" to={to} search={search ?? {}}>
      {body}
    </Link>
  );
}
