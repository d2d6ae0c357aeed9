-- 001_init: tasks, their event log, queues, nodes. Everything lives in the install's schema ({{schema}}).
-- Ids and offsets are bigint (returned to JavaScript as numbers: they stay far below 2^53); times are timestamptz;
-- JSON columns are jsonb.

CREATE TABLE {{schema}}.tasks (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue text NOT NULL,
  type text NOT NULL,
  data jsonb NOT NULL DEFAULT 'null',
  priority integer NOT NULL DEFAULT 0,
  state text NOT NULL CHECK (state IN ('scheduled', 'queued', 'running', 'completed', 'failed', 'cancelled')),
  attempt integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL,
  stalls integer NOT NULL DEFAULT 0,
  run_at timestamptz NOT NULL,
  key text,
  progress jsonb,
  result jsonb,
  error jsonb,
  errors jsonb NOT NULL DEFAULT '[]',
  timeout_ms bigint,
  backoff_ms bigint,
  node text,
  created_at timestamptz NOT NULL,
  started_at timestamptz,
  finished_at timestamptz
);

-- The claim reads this index in order: queued tasks of one queue, highest priority first, then FIFO.
CREATE INDEX tasks_claim ON {{schema}}.tasks (queue, priority DESC, id) WHERE state = 'queued';
CREATE INDEX tasks_scheduled ON {{schema}}.tasks (run_at) WHERE state = 'scheduled';
CREATE INDEX tasks_running_node ON {{schema}}.tasks (node) WHERE state = 'running';
CREATE INDEX tasks_finished ON {{schema}}.tasks (finished_at) WHERE state IN ('completed', 'failed', 'cancelled');
CREATE INDEX tasks_state ON {{schema}}.tasks (state, id);
CREATE INDEX tasks_queue_state ON {{schema}}.tasks (queue, state);
-- A key is unique among active tasks only: once a task finishes, its key is free again. Inserts name this index
-- as their ON CONFLICT arbiter.
CREATE UNIQUE INDEX tasks_key_active ON {{schema}}.tasks (key)
  WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'running');

-- The event log. Offsets must be gap-free in commit order, and a sequence cannot give that in PostgreSQL:
-- sequence values are handed out when a transaction asks, not when it commits, so a reader tailing
-- `offset > cursor` could pass over an offset whose transaction commits late and never see it.
--
-- So offsets come from one counter row instead. Every transaction that appends events takes its offsets, as its
-- LAST statement before COMMIT, from this row (`UPDATE event_counter SET value = value + n RETURNING value`),
-- inserting the events in that same statement (a CTE: update the counter, then insert the events at
-- base + ordinality). The row lock is held only from that statement to COMMIT, so writers serialise only around
-- their commit; offsets are dense and in commit order, because the next writer cannot read the counter until
-- this one has committed (and is visible); a rolled-back transaction rolls its counter update back too.
-- eventLastOffset reads the counter, so pruning old events never moves it back.
CREATE TABLE {{schema}}.event_counter (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  value bigint NOT NULL
) WITH (fillfactor = 50);
INSERT INTO {{schema}}.event_counter (singleton, value) VALUES (true, 0);

CREATE TABLE {{schema}}.events (
  "offset" bigint PRIMARY KEY,
  type text NOT NULL,
  task_id bigint NOT NULL,
  queue text NOT NULL,
  data jsonb NOT NULL DEFAULT 'null',
  at timestamptz NOT NULL
);
CREATE INDEX events_task ON {{schema}}.events (task_id, "offset");
-- Events arrive roughly in `at` order, so a BRIN index finds the old ones for pruning at a fraction of a btree's
-- cost on every insert.
CREATE INDEX events_at ON {{schema}}.events USING brin (at);

-- The error history with `error` appended, keeping the newest `keep` entries, oldest first (the statements that
-- fail, cancel or rescue a task share it; `keep` is MAX_ERROR_HISTORY, passed by the driver).
CREATE FUNCTION {{schema}}.append_error(history jsonb, error jsonb, keep integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(jsonb_agg(entry ORDER BY n), '[]'::jsonb)
  FROM (
    SELECT entry, n FROM jsonb_array_elements(coalesce(history, '[]'::jsonb) || jsonb_build_array(error)) WITH ORDINALITY AS h(entry, n)
    ORDER BY n DESC
    LIMIT keep
  ) recent
$$;

CREATE TABLE {{schema}}.queues (
  name text PRIMARY KEY,
  paused boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL
);

CREATE TABLE {{schema}}.nodes (
  id text PRIMARY KEY,
  name text NOT NULL,
  host text NOT NULL,
  pid integer NOT NULL,
  version text NOT NULL,
  roles text[] NOT NULL DEFAULT '{}',
  started_at timestamptz NOT NULL,
  heartbeat_at timestamptz NOT NULL,
  info jsonb NOT NULL DEFAULT 'null'
);
