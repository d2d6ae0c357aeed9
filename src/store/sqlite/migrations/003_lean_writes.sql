-- 003_lean_writes: fewer B-trees written per transition (measured in bench/RESULTS.md).
--
-- * The event log keeps one row per transaction instead of one per event: a claim of 50 writes one log row,
--   not 50 rows and 100 index entries. A row holds the events with offsets offset .. offset + count - 1.
-- * A task lists the log rows that mention it (event_refs, offsets separated by spaces), so its own history
--   needs no index over the log.
-- * Counts per queue and state live in queue_counts, kept by the store in the same transaction as the change,
--   instead of two full indexes over tasks (tasks_state, tasks_queue_state) rewritten on every transition.
-- * The pruner walks tasks in id order (ids grow with created_at), so tasks_finished goes too.
-- * Listing failed or cancelled tasks keeps an index of its own: those are rare, and never on the hot path.

ALTER TABLE tasks ADD COLUMN event_refs TEXT NOT NULL DEFAULT '';

CREATE TABLE event_log (
  offset INTEGER PRIMARY KEY,
  count INTEGER NOT NULL,
  at INTEGER NOT NULL,
  -- A JSON array of [type, task_id, queue, data], one per event, in offset order.
  events TEXT NOT NULL
);

INSERT INTO event_log (offset, count, at, events)
SELECT offset, 1, at, json_array(json_array(type, task_id, queue, json(data))) FROM events;
-- A log the pruner emptied still remembers its last offset: keep it as one row standing for that event.
INSERT INTO event_log (offset, count, at, events)
SELECT seq, 1, 0, '[]' FROM sqlite_sequence WHERE name = 'events' AND seq > 0 AND NOT EXISTS (SELECT 1 FROM events);

UPDATE tasks SET event_refs = coalesce(
  (SELECT group_concat(offset, ' ') FROM (SELECT offset FROM events WHERE events.task_id = tasks.id ORDER BY offset)), '');

DROP TABLE events;

CREATE TABLE queue_counts (
  queue TEXT NOT NULL,
  state TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (queue, state)
) WITHOUT ROWID;

INSERT INTO queue_counts (queue, state, count) SELECT queue, state, count(*) FROM tasks GROUP BY queue, state;

DROP INDEX tasks_state;
DROP INDEX tasks_queue_state;
DROP INDEX tasks_finished;
CREATE INDEX tasks_ended_badly ON tasks (state, id) WHERE state IN ('failed', 'cancelled');
