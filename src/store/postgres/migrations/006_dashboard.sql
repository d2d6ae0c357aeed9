-- 006_dashboard: what the dashboard steers and charts besides tasks: a concurrency per queue that every node
-- applies live (null: each node's own setting), and each node's throughput and timings per 5-second bucket
-- (task_stats; run and wait are histograms, JSON arrays of counts over core/stats.ts's bounds).
ALTER TABLE {{schema}}.queues ADD COLUMN concurrency integer;
CREATE TABLE {{schema}}.task_stats (
  at timestamptz NOT NULL,
  node text NOT NULL,
  completed integer NOT NULL,
  failed integer NOT NULL,
  retried integer NOT NULL,
  run jsonb NOT NULL,
  wait jsonb NOT NULL,
  PRIMARY KEY (at, node)
);
