-- 003_lean_writes: fewer rows and index entries written per transition, and no row that every writer shares: one
-- event-log row per statement, offsets given by a sequencer that readers run (event_sequence() below), tasks
-- naming their log rows in event_refs, counts per queue and state in queue_counts. Why each, and how offsets stay
-- dense and in commit order without writers waiting for each other: docs/event-log.md.

DROP INDEX {{schema}}.tasks_state;
DROP INDEX {{schema}}.tasks_queue_state;
DROP INDEX {{schema}}.tasks_finished;

-- bigint[] rather than SQLite's text of offsets: the log's primary key is searched with `id = ANY(event_refs)`
-- as it is, with nothing to parse, and at realistic ids an element takes the bytes its digits would.
ALTER TABLE {{schema}}.tasks ADD COLUMN event_refs bigint[] NOT NULL DEFAULT '{}';

CREATE SEQUENCE {{schema}}.event_log_ids;

CREATE TABLE {{schema}}.event_log (
  id bigint PRIMARY KEY DEFAULT nextval('{{schema}}.event_log_ids'),
  -- NULL until event_sequence() gives the row its offsets.
  "offset" bigint,
  -- The WAL insert position when the row was inserted: orders the rows one sequencer call numbers together.
  lsn pg_lsn NOT NULL DEFAULT pg_current_wal_insert_lsn(),
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
-- Both partial, so a writer's insert adds one entry besides the primary key's (to event_log_pending), and the
-- sequencer's update one (to event_log_offset). That update is never HOT (it changes an indexed column) and
-- copies the row, events included; it is done in bulk, off the writers' path.
CREATE UNIQUE INDEX event_log_offset ON {{schema}}.event_log ("offset") WHERE "offset" IS NOT NULL;
CREATE INDEX event_log_pending ON {{schema}}.event_log (lsn, id) WHERE "offset" IS NULL;

-- Each old event becomes a log row of its own, its id equal to its offset. It has its offset already, and the
-- lsn only orders rows still waiting for one; '0/0' (below any position) says that it comes before them all.
INSERT INTO {{schema}}.event_log (id, "offset", lsn, count, at, events)
SELECT "offset", "offset", '0/0', 1, at, json_build_array(json_build_array(type, task_id, queue, data))
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

-- The sequencer (docs/event-log.md, "Offsets"): gives offsets to up to `batch` committed log rows that have none, in
-- (lsn, id) order, continuing from event_counter, and returns how many rows it numbered. PostgresStore#sequence
-- calls it again while it numbers full batches.
--
-- Two sequencers never give the same offset twice nor skip one. Each takes a transaction-scoped advisory lock
-- before it reads anything it is going to write, so they number one at a time, and it reads the counter and
-- the pending rows in the statement AFTER taking the lock: in a VOLATILE function under READ COMMITTED (the
-- driver's connections), every statement takes a new snapshot. The lock is released at COMMIT, once the
-- previous sequencer's offsets and counter are visible to new snapshots, so the next one continues from the
-- counter the previous one left, and no longer sees the rows it numbered as pending. The unique index on
-- "offset" would refuse a duplicate anyway (and under REPEATABLE READ the update of a row or counter another
-- sequencer changed fails instead).
--
-- An advisory lock rather than a lock on the counter row: a sequencer that waited for another and then finds
-- nothing left writes nothing, so it gets no transaction id and no WAL flush at COMMIT. And most calls take no
-- lock at all: they find no committed row waiting (the first statement, on event_log_pending; rows of open
-- transactions are invisible to it).
CREATE FUNCTION {{schema}}.event_sequence(batch integer, OUT sequenced integer)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  sequenced := 0;
  IF EXISTS (SELECT 1 FROM {{schema}}.event_log l WHERE l."offset" IS NULL) THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('conveyor:event_sequence:{{schema}}', 0));
    WITH pending AS MATERIALIZED (
      SELECT id, count, sum(count) OVER (ORDER BY lsn, id) AS through
      FROM (
        SELECT l.id, l.lsn, l.count FROM {{schema}}.event_log l
        WHERE l."offset" IS NULL
        ORDER BY l.lsn, l.id
        LIMIT batch
      ) committed
    ),
    numbered AS (
      UPDATE {{schema}}.event_log l SET "offset" = c.value + p.through - p.count + 1
      FROM pending p, {{schema}}.event_counter c
      WHERE l.id = p.id
    ),
    advanced AS (
      UPDATE {{schema}}.event_counter SET value = value + (SELECT sum(count) FROM pending)
      WHERE EXISTS (SELECT 1 FROM pending)
    )
    SELECT count(*) INTO sequenced FROM pending;
  END IF;
END
$$;

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
