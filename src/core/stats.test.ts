import assert from "node:assert/strict";
import { test } from "node:test";
import {
  emptyHistogram,
  histogramAdd,
  histogramMerge,
  histogramQuantile,
  percentilesOf,
  STATS_BOUNDS_MS,
} from "./stats.ts";

test("a histogram counts each time in the first bucket whose bound holds it", () => {
  const h = emptyHistogram();
  for (const ms of [0, 1, 1.5, 2, 3, 999, 1000, 1001, 10_000_000]) histogramAdd(h, ms);
  assert.equal(h.length, STATS_BOUNDS_MS.length + 1);
  assert.deepEqual([h[0], h[1], h[2], h[9], h[10], h.at(-1)], [2, 2, 1, 2, 1, 1]);
});

test("quantiles come from the merged counts, as bucket bounds; an empty histogram has none", () => {
  const a = emptyHistogram();
  const b = emptyHistogram();
  for (let i = 0; i < 90; i++) histogramAdd(a, 4); // bucket ≤ 5
  for (let i = 0; i < 9; i++) histogramAdd(b, 150); // bucket ≤ 200
  histogramAdd(b, 4000); // bucket ≤ 5000
  histogramMerge(a, b);
  assert.deepEqual(percentilesOf(a), { p50: 5, p95: 200, p99: 200 });
  assert.equal(histogramQuantile(a, 1), 5000);
  assert.equal(percentilesOf(emptyHistogram()), null);
});
