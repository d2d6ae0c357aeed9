-- 002_cluster: the leader lease and cron schedules.

-- One row per lease name; a node holds it until expires_at unless it renews.
CREATE TABLE {{schema}}.leases (
  name text PRIMARY KEY,
  node text NOT NULL,
  expires_at timestamptz NOT NULL
);

-- A schedule enqueues a task of `type` on every tick of `cron`; last_tick makes each tick fire once.
CREATE TABLE {{schema}}.schedules (
  name text PRIMARY KEY,
  cron text NOT NULL,
  timezone text,
  type text NOT NULL,
  data jsonb NOT NULL DEFAULT 'null',
  options jsonb NOT NULL DEFAULT '{}',
  enabled boolean NOT NULL DEFAULT true,
  last_tick timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
