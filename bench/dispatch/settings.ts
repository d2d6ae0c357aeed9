/**
 * What the dispatch bench sends: one payload shape for the bare loop and for dispatch, so that both post the same
 * bytes (dispatch merges the attributes into the payload, as Postoffice did).
 */
export const ATTRIBUTES = { source: "bench", kind: "order.created" };

export function benchPayload(i: number): { [key: string]: string | number } {
  return { order: i, customer: `c-${i % 997}`, total: (i % 100) + 0.5, currency: "EUR", note: "a small webhook body" };
}

/** The body dispatch sends for message `i`: its payload with `attributes` merged in. */
export function benchBody(i: number): string {
  return JSON.stringify({ ...benchPayload(i), attributes: ATTRIBUTES });
}
