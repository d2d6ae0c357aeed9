-- 003_lean_writes: fewer rows and index entries written per transition. In PostgreSQL an UPDATE that changes
-- `state` is never HOT (state is in every partial index's predicate), so it adds an entry to every index whose
-- predicate the new row satisfies; every index dropped here is one entry less per transition.
--
-- * The event log keeps one row per statement instead of one per event: a claim of 50 writes one log row and
--   two index entries, not 50 rows and 100 btree entries (plus the BRIN). A row holds the events with offsets
--   "offset" .. "offset" + count - 1. Offsets still come from event_counter, as described in 001_init.sql: the
--   counter is the last lock a statement takes, and its row then holds offsets value - count + 1 .. value.
-- * A log row also has an id, from a sequence, that a statement draws before it changes any task, and appends
--   to the event_refs of each task it records an event for: the offset is known only at the very end of the
--   statement, after the task rows are written, so the task cannot name the offset itself. A task's own history
--   is then its event_refs, without an index over the log. Progress events are not referenced: a long task
--   reports thousands of them.
-- * Counts per queue and state live in queue_counts, kept by the statement that changes them, instead of two full
--   indexes over tasks (tasks_state, tasks_queue_state) rewritten on every transition.
-- * The pruner walks tasks in id order (ids grow with created_at), so tasks_finished goes too.
-- * Listing failed or cancelled tasks keeps an index of its own: those are rare, and never on the hot path.

DROP INDEX {{schema}}.tasks_state;
DROP INDEX {{schema}}.tasks_queue_state;
DROP INDEX {{schema}}.tasks_finished;

-- bigint[] rather than SQLite's text of offsets: the log's primary key is searched with `id = ANY(event_refs)`
-- as it is, with nothing to parse, and at realistic ids an element takes the bytes its digits would.
ALTER TABLE {{schema}}.tasks ADD COLUMN event_refs bigint[] NOT NULL DEFAULT '{}';

CREATE SEQUENCE {{schema}}.event_log_ids;

CREATE TABLE {{schema}}.event_log (
  id bigint PRIMARY KEY DEFAULT nextval('{{schema}}.event_log_ids'),
  "offset" bigint NOT NULL UNIQUE,
  count integer NOT NULL CHECK (count > 0),
  at timestamptz NOT NULL,
  -- A JSON array of [type, task_id, queue, data], one per event, in offset order. json, not jsonb: the log is
  -- written once and read whole by the driver, never searched inside, and json keeps the text as built (cheaper
  -- to build, smaller, and sent back without conversion).
  events json NOT NULL
);
ALTER SEQUENCE {{schema}}.event_log_ids OWNED BY {{schema}}.event_log.id;
-- Compressed but kept in the row up to a page: a claim's few kilobytes of events then cost no TOAST row and no
-- TOAST index entry.
ALTER TABLE {{schema}}.event_log ALTER COLUMN events SET STORAGE MAIN;

-- Each old event becomes a log row of its own, its id equal to its offset.
INSERT INTO {{schema}}.event_log (id, "offset", count, at, events)
SELECT "offset", "offset", 1, at, json_build_array(json_build_array(type, task_id, queue, data))
FROM {{schema}}.events
ORDER BY "offset";
SELECT setval('{{schema}}.event_log_ids', coalesce((SELECT max("offset") FROM {{schema}}.events), 0) + 1, false);

UPDATE {{schema}}.tasks t SET event_refs = e.refs
FROM (
  SELECT task_id, array_agg("offset" ORDER BY "offset") AS refs
  FROM {{schema}}.events
  WHERE type <> 'task.progress'
  GROUP BY task_id
) e
WHERE t.id = e.task_id;

DROP TABLE {{schema}}.events;

-- Counts per queue and state, in shards: a statement adds its changes to the rows of shard
-- pg_backend_pid() % 16, so concurrent connections mostly lock different rows, and a reader sums the shards. A
-- shard's count may go below zero (a task claimed through one connection and completed through another); the
-- sum never does. A count is in no index, so with room left on the page (fillfactor) its updates stay HOT.
CREATE TABLE {{schema}}.queue_counts (
  queue text NOT NULL,
  state text NOT NULL,
  shard integer NOT NULL,
  count bigint NOT NULL,
  PRIMARY KEY (queue, state, shard)
) WITH (fillfactor = 50);

INSERT INTO {{schema}}.queue_counts (queue, state, shard, count)
SELECT queue, state, 0, count(*) FROM {{schema}}.tasks GROUP BY queue, state;

CREATE INDEX tasks_ended_badly ON {{schema}}.tasks (state, id) WHERE state IN ('failed', 'cancelled');
