-- 006_dashboard: what the dashboard steers and charts besides tasks: a concurrency per queue that every node
-- applies live (null: each node's own setting), and each node's throughput and timings per 5-second bucket
-- (task_stats; run and wait are histograms, JSON arrays of counts over core/stats.ts's bounds).
ALTER TABLE queues ADD COLUMN concurrency INTEGER;
CREATE TABLE task_stats (
  at INTEGER NOT NULL,
  node TEXT NOT NULL,
  completed INTEGER NOT NULL,
  failed INTEGER NOT NULL,
  retried INTEGER NOT NULL,
  run TEXT NOT NULL,
  wait TEXT NOT NULL,
  PRIMARY KEY (at, node)
);
