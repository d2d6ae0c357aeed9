/** Numbers, durations and times as people read them. */

const numberFormat = new Intl.NumberFormat();
const compactFormat = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });
const exact = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  timeZoneName: "short",
});
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dayClock = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});

export const formatNumber = (n: number): string => numberFormat.format(n);
export const formatCompact = (n: number): string =>
  Math.abs(n) < 10_000 ? numberFormat.format(n) : compactFormat.format(n);

/** 850 ms, 12.3 s, 4 min 05 s, 2 h 10 min, 3 d 4 h. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(abs < 10_000 ? 2 : 1)} s`;
  const s = Math.round(abs / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** "3 s ago", "in 2 min", relative to `now`. */
export function formatRelative(iso: string | number | Date, now: number): string {
  const at = typeof iso === "number" ? iso : new Date(iso).getTime();
  const diff = (at - now) / 1000;
  const abs = Math.abs(diff);
  if (abs < 1) return "now";
  if (abs < 60) return relative.format(Math.round(diff), "second");
  if (abs < 3600) return relative.format(Math.round(diff / 60), "minute");
  if (abs < 86_400) return relative.format(Math.round(diff / 3600), "hour");
  return relative.format(Math.round(diff / 86_400), "day");
}

export function formatExact(iso: string | number | Date): string {
  return exact.format(new Date(iso));
}

export function formatUtc(iso: string | number | Date): string {
  return `${new Date(iso)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "")} UTC`;
}

export function formatClock(iso: string | number | Date): string {
  return clock.format(new Date(iso));
}

export function formatDayClock(iso: string | number | Date): string {
  return dayClock.format(new Date(iso));
}

export function pluralize(n: number, one: string, many = `${one}s`): string {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}

export const localTimeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
