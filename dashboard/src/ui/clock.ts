/**
 * One clock for every relative time on the page: it ticks once a second while someone shows a relative time and the
 * page is visible, and not at all otherwise. It only redraws ages ("3 s ago"); it fetches nothing.
 */
import { useSyncExternalStore } from "react";

let now = Date.now();
let timer: ReturnType<typeof setInterval> | null = null;
const listeners = new Set<() => void>();

function tick() {
  now = Date.now();
  for (const listener of listeners) listener();
}

function sync() {
  const want = listeners.size > 0 && !document.hidden;
  if (want && timer === null) {
    tick();
    timer = setInterval(tick, 1000);
  } else if (!want && timer !== null) {
    clearInterval(timer);
    timer = null;
  }
}

document.addEventListener("visibilitychange", sync);

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  sync();
  return () => {
    listeners.delete(listener);
    sync();
  };
}

export function useNow(): number {
  return useSyncExternalStore(subscribe, () => now);
}
