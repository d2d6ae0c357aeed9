/**
 * deliveryCounts' rows as the DispatchStore answers them, for both drivers: one row per (state) overall and per
 * (publisher, state), each with its capped count `n`. A state or publisher without a row counts zero.
 */
import type { DispatchRow } from "./dispatch-rows.ts";
import { COUNTED_STATES, type DeliveryCounts, type StateCounts } from "./dispatch-store.ts";

function zeroes(): StateCounts {
  return Object.fromEntries(COUNTED_STATES.map((state) => [state, 0])) as StateCounts;
}

function add(counts: StateCounts, row: DispatchRow): void {
  const state = String(row.state);
  if (state in counts) counts[state as keyof StateCounts] = Number(row.n);
}

export function countsOf(overall: DispatchRow[], byPublisher: DispatchRow[], publisherIds: number[]): DeliveryCounts {
  const states = zeroes();
  for (const row of overall) add(states, row);
  const publishers = new Map(publisherIds.map((id) => [id, zeroes()]));
  for (const row of byPublisher) {
    const counts = publishers.get(Number(row.publisher_id));
    if (counts !== undefined) add(counts, row);
  }
  return { states, publishers: [...publishers].map(([publisherId, counts]) => ({ publisherId, states: counts })) };
}
