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
-- Finding tasks by key, finished ones too (tasks_key_active holds only active ones): only tasks with a key pay for
-- it. The other filters of a list (queue, type, time) get no index: the runtime reads them in bounded stretches of
-- ids instead (runtime/task-listing.ts).
CREATE INDEX tasks_key ON tasks (key, id) WHERE key IS NOT NULL;
