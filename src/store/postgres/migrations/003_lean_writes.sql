-- 003_lean_writes: fewer rows and index entries written per transition, and no row that every writer shares. In
-- PostgreSQL an UPDATE that changes `state` is never HOT (state is in every partial index's predicate), so it adds
-- an entry to every index whose predicate the new row satisfies; every index dropped here is one entry less per
-- transition.
--
-- * The event log keeps one row per statement instead of one per event: a claim of 50 writes one log row and
--   two index entries, not 50 rows and 100 btree entries (plus the BRIN). A row holds the events with offsets
--   "offset" .. "offset" + count - 1.
-- * Writers no longer take offsets: a log row is inserted without one, stamped with the WAL insert position at
--   that moment, and a sequencer run by readers gives it offsets once it has committed (see "Offsets" below).
--   001's scheme had every writer lock the event_counter row from its last statement to COMMIT, WAL flush
--   included, so every writing transaction of the cluster committed one at a time, and no two shared a flush.
-- * A log row also has an id, from a sequence, that a statement draws before it changes any task, and appends
--   to the event_refs of each task it records an event for: the offset is not known when the statement runs, so
--   the task cannot name it. A task's own history is then its event_refs, without an index over the log.
--   Progress events are not referenced: a long task reports thousands of them.
-- * Counts per queue and state live in queue_counts, kept by the statement that changes them, instead of two full
--   indexes over tasks (tasks_state, tasks_queue_state) rewritten on every transition.
-- * The pruner walks tasks in id order (ids grow with created_at), so tasks_finished goes too.
-- * Listing failed or cancelled tasks keeps an index of its own: those are rare, and never on the hot path.
--
-- Offsets. A reader tails the log with `offset > cursor`, so offsets must be dense, and no offset may ever be
-- given below one a reader has already passed. A sequence cannot do that (001_init.sql says why), and neither
-- can a writer, which does not know which transactions that started before it will commit after it. A reader
-- can: event_sequence() below, which readers run before they read, numbers every committed log row that has no
-- offset yet, continuing from event_counter (the last offset given), one sequencer at a time under an advisory
-- lock. It looks for those rows with a snapshot taken after the lock, so it sees all that earlier sequencers
-- numbered; a row that commits afterwards is numbered by a later call, above every offset given so far, so a
-- reader's cursor is never passed by a row behind it. Rows of aborted transactions are never seen, so they
-- leave no gap.
--
-- So offsets follow the order in which log rows became visible to the sequencer: commit order as readers
-- observe it, at the grain of the sequencer's calls. Rows that one call finds together are numbered in the
-- order of their WAL insert positions (the lsn column, taken as the row is inserted; the id breaks ties, which
-- only rows of concurrent transactions can have). That keeps every order one transaction can observe of
-- another: a transaction that acted on what another committed, or waited for one of its row locks (a cancel
-- waiting for a retry's lock on the same task, an insert waiting for a completion to free a key), inserts its
-- log row after the other's commit record, so at a higher position, and it commits after the other, so no
-- call finds it first. Each of Conveyor's statements inserts its log row last, after it has locked every task
-- it records an event for, so a task's events come out in the order its row lock was granted. Only two
-- transactions that each wrote their log row before the other committed may come out in an order other than
-- their commits' (when one call finds both, the one that wrote first is first), and neither saw anything of
-- the other. Within a transaction, rows follow its statements.
--
-- The trade-off: offsets are given at read time, so an event has none until a reader (or the pruner) runs the
-- sequencer, and a long transaction's events are numbered when it commits, after whatever committed
-- meanwhile, however early it wrote them. In exchange, a writer never waits for another (it shares no row with
-- them, and concurrent commits can share a WAL flush), and nothing holds the stream back: a transaction left
-- open, in Conveyor or anywhere else on the server, delays no events but its own.

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

-- The sequencer (see "Offsets" above): gives offsets to up to `batch` committed log rows that have none, in
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
