-- 001_init: tasks, their event log, queues, nodes.
-- Times are integer milliseconds since the epoch; JSON columns hold text.

CREATE TABLE tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT 'null',
  priority INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL CHECK (state IN ('scheduled', 'queued', 'running', 'completed', 'failed', 'cancelled')),
  attempt INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  stalls INTEGER NOT NULL DEFAULT 0,
  run_at INTEGER NOT NULL,
  key TEXT,
  progress TEXT,
  result TEXT,
  error TEXT,
  errors TEXT NOT NULL DEFAULT '[]',
  timeout_ms INTEGER,
  backoff_ms INTEGER,
  node TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
);

-- The claim reads this index in order: queued tasks of one queue, highest priority first, then FIFO.
CREATE INDEX tasks_claim ON tasks (queue, priority DESC, id) WHERE state = 'queued';
CREATE INDEX tasks_scheduled ON tasks (run_at) WHERE state = 'scheduled';
CREATE INDEX tasks_running_node ON tasks (node) WHERE state = 'running';
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE state IN ('completed', 'failed', 'cancelled');
CREATE INDEX tasks_state ON tasks (state, id);
CREATE INDEX tasks_queue_state ON tasks (queue, state);
-- A key is unique among active tasks only: once a task finishes, its key is free again.
CREATE UNIQUE INDEX tasks_key_active ON tasks (key) WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'running');

-- The event log. SQLite has one writer at a time, so rowids are assigned in commit order: no gaps to skip.
CREATE TABLE events (
  offset INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,
  task_id INTEGER NOT NULL,
  queue TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT 'null',
  at INTEGER NOT NULL
);
CREATE INDEX events_task ON events (task_id, offset);
CREATE INDEX events_at ON events (at);

CREATE TABLE queues (
  name TEXT PRIMARY KEY,
  paused INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL
);

CREATE TABLE nodes (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  version TEXT NOT NULL,
  roles TEXT NOT NULL DEFAULT '[]',
  started_at INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  info TEXT NOT NULL DEFAULT 'null'
);
