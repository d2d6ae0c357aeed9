-- 003_lean_writes: fewer rows and index entries written per transition, and no row that every writer shares. In
-- PostgreSQL an UPDATE that changes `state` is never HOT (state is in every partial index's predicate), so it adds
-- an entry to every index whose predicate the new row satisfies; every index dropped here is one entry less per
-- transition.
--
-- * The event log keeps one row per statement instead of one per event: a claim of 50 writes one log row and
--   two index entries, not 50 rows and 100 btree entries (plus the BRIN). A row holds the events with offsets
--   "offset" .. "offset" + count - 1.
-- * Writers no longer take offsets: a log row is inserted without one, stamped with its transaction's id, and a
--   sequencer gives it offsets once that transaction has certainly ended (see "Offsets" below). 001's scheme
--   had every writer lock the event_counter row from its last statement to COMMIT, WAL flush included, so every
--   writing transaction of the cluster committed one at a time, and no two could share a flush.
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
-- can a writer, which does not know which transactions that started before it will commit after it. What can
-- be known is which transactions have certainly ended: every transaction id below the xmin of a snapshot
-- (pg_snapshot_xmin(pg_current_snapshot())) belongs to a transaction that has committed or aborted, and every
-- transaction that can still commit has, or will get, an id at or above it. So the log rows below xmin that
-- have no offset yet are a set that no later commit can add to, and numbering them in (xid, id) order puts
-- every row sequenced later after all of them. event_sequence() below does that, continuing from event_counter,
-- which now holds the last offset given. Rows of aborted transactions are never seen, so they leave no gap.
-- Within a transaction, ids follow its statements. Transactions are ordered by their id, that is by when each
-- got it (its first write, or a nextval that had to be logged); for transactions that do not overlap, that is
-- their commit order. Of two that overlap, the one with the older id comes first, even when it waited for a
-- lock the other held and then acted on what the other committed (say, inserted a task with the key that the
-- other's completion freed). On one task, among Conveyor's statements, that can only list a progress event
-- after the transition that ended its attempt: a completion batch, a failure or a release that has its id
-- already waits for the progress write's lock on the task, then finds it still running. Every other statement
-- either waits before it has an id or finds the task in another state after the wait and leaves it alone, so
-- a task's own history (event_refs, which leaves progress out) keeps its order.
--
-- Readers run the sequencer before they read (PostgresStore#sequence), so an operation's events are listed
-- once it has returned. The trade-off: a transaction that holds an id (it wrote, or locked a row) keeps xmin
-- from passing it for as long as it stays open, and nothing committed after it can be sequenced meanwhile.
-- That is any such transaction on the server, in any schema or database (transaction ids are server-wide),
-- including one left idle in transaction or a forgotten prepared transaction. It delays the event stream, not
-- the tasks: writers neither wait for it nor lose anything; their events are listed, in order, once it ends.

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
  -- The writing transaction (xid8: 64 bits, so it never wraps around).
  xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
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
CREATE INDEX event_log_pending ON {{schema}}.event_log (xid, id) WHERE "offset" IS NULL;

-- Each old event becomes a log row of its own, its id equal to its offset. It has its offset already, and the
-- xid only orders rows still waiting for one; '0' (below any transaction's) says that it comes before them all.
INSERT INTO {{schema}}.event_log (id, "offset", xid, count, at, events)
SELECT "offset", "offset", '0', 1, at, json_build_array(json_build_array(type, task_id, queue, data))
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

-- The sequencer (see "Offsets" above): gives offsets to up to `batch` log rows of ended transactions, in (xid, id)
-- order, continuing from event_counter. Returns `sequenced`, how many rows it numbered; `horizon`, `since` or,
-- when that is null, the xmax of the call's first snapshot (every transaction that had ended when the call
-- began has an id below it); and `behind`, whether rows of ended transactions below `horizon` still wait for
-- an offset after the call (an older transaction is still open). PostgresStore#sequence calls it again while it
-- numbers full batches, and, for a reader, a little later while it is behind.
--
-- Two sequencers never give the same offset twice nor skip one. Each takes a transaction-scoped advisory lock
-- before it reads anything it is going to write, so they number one at a time, and it reads the counter and
-- the pending rows in the statement AFTER taking the lock: in a VOLATILE function under READ COMMITTED (the
-- driver's connections), every statement takes a new snapshot. The lock is released at COMMIT, once the
-- previous sequencer's offsets and counter are visible to new snapshots, so the next one continues from the
-- counter the previous one left, and no longer sees the rows it numbered as pending. And what it numbers sorts
-- after those rows: a row below the previous sequencer's xmin that it did not number was left over by `batch`,
-- so it comes after that batch in (xid, id) order; any other row has an xid at or above that xmin, above the
-- xid of every row numbered then. The unique index on "offset" would refuse a duplicate anyway.
--
-- An advisory lock rather than a lock on the counter row: a sequencer that waited for another and then finds
-- nothing left writes nothing, so it gets no transaction id and no WAL flush at COMMIT. And most calls take no
-- lock at all: they find nothing ended to number (the first statement, on event_log_pending).
CREATE FUNCTION {{schema}}.event_sequence(batch integer, since xid8, OUT sequenced integer, OUT horizon xid8, OUT behind boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  ready boolean;
BEGIN
  sequenced := 0;
  SELECT coalesce(since, pg_snapshot_xmax(pg_current_snapshot())) INTO horizon;
  SELECT l.xid < pg_snapshot_xmin(pg_current_snapshot()) INTO ready
  FROM {{schema}}.event_log l WHERE l."offset" IS NULL ORDER BY l.xid, l.id LIMIT 1;
  IF ready THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('conveyor:event_sequence:{{schema}}', 0));
    WITH pending AS MATERIALIZED (
      SELECT id, count, sum(count) OVER (ORDER BY xid, id) AS through
      FROM (
        SELECT l.id, l.xid, l.count FROM {{schema}}.event_log l
        WHERE l."offset" IS NULL AND l.xid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY l.xid, l.id
        LIMIT batch
      ) ended
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
  SELECT EXISTS (SELECT 1 FROM {{schema}}.event_log l WHERE l."offset" IS NULL AND l.xid < horizon) INTO behind;
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
