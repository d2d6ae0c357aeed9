-- 002_cluster: the leader lease and cron schedules.

-- One row per lease name; a node holds it until expires_at unless it renews.
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  node TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);

-- A schedule enqueues a task of `type` on every tick of `cron`; last_tick makes each tick fire once.
CREATE TABLE schedules (
  name TEXT PRIMARY KEY,
  cron TEXT NOT NULL,
  timezone TEXT,
  type TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT 'null',
  options TEXT NOT NULL DEFAULT '{}',
  enabled INTEGER NOT NULL DEFAULT 1,
  last_tick INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
