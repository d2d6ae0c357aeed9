-- PostgreSQL statements on the event log, queue counts, queues, nodes, leases and schedules tables; {{schema}} is
-- the quoted schema.

-- name: eventLogAfter
-- The log rows holding the first $2 events after offset $1, in offset order: from the row holding the event after
-- $1 (whose first events may be older), or the oldest row after $1 when pruning took that one, up to the row
-- holding the $2-th event from there. Offsets are dense, and never given below one already given
-- (event_sequence(), docs/event-log.md), so a reader that moves its cursor to the last offset it saw never
-- skips an event sequenced later. Rows still waiting for an offset match no comparison here.
WITH first AS MATERIALIZED (
  SELECT "offset" FROM (
    (SELECT "offset", count FROM {{schema}}.event_log WHERE "offset" <= $1::bigint + 1 ORDER BY "offset" DESC LIMIT 1)
    UNION ALL
    (SELECT "offset", count FROM {{schema}}.event_log WHERE "offset" > $1::bigint ORDER BY "offset" LIMIT 1)
  ) candidates
  WHERE "offset" + count > $1::bigint + 1
  ORDER BY "offset"
  LIMIT 1
)
-- The range's ends are values (no join with `first`), so that it is an index condition in every plan.
SELECT l."offset", l.at, l.events
FROM {{schema}}.event_log l
WHERE l."offset" >= (SELECT "offset" FROM first)
  AND l."offset" < greatest((SELECT "offset" FROM first), $1::bigint + 1) + $2::integer
ORDER BY l."offset";

-- name: eventLogForTask
-- The log rows task $1's event_refs name that hold events after offset $2, in offset order, enough for $3 of its
-- events: each row holds one event of the task (a statement changes a task once), and only the first may hold
-- it at or before $2. The rows are fetched by id first: filtered and ordered by offset in the same scan, they
-- could be read in offset order from the log's start.
WITH mine AS MATERIALIZED (
  SELECT l."offset", l.count, l.at, l.events
  FROM {{schema}}.event_log l
  WHERE l.id = ANY ((SELECT t.event_refs FROM {{schema}}.tasks t WHERE t.id = $1::bigint)::bigint[])
)
SELECT "offset", at, events FROM mine
WHERE "offset" + count > $2::bigint + 1
ORDER BY "offset"
LIMIT $3::integer + 1;

-- name: eventSequence
-- Runs the sequencer over up to $1 committed log rows; see docs/event-log.md.
SELECT sequenced FROM {{schema}}.event_sequence($1::integer);

-- name: eventLogEpoch
SELECT value AS epoch FROM {{schema}}.log_meta WHERE key = 'epoch';

-- name: eventLogOldestOffset
-- The first offset the log still holds (no row when it holds none), from the front of event_log_offset.
SELECT "offset" FROM {{schema}}.event_log WHERE "offset" IS NOT NULL ORDER BY "offset" LIMIT 1;

-- name: eventAppend
-- Appends events that belong to no task ($1, a JSON array of log entries [type, 0, channel, data], $2 of them) at
-- $3, as one log row; the sequencer gives it offsets once it has committed, like every other row.
INSERT INTO {{schema}}.event_log (count, at, events) VALUES ($2::integer, $3::timestamptz, $1::json);

-- name: eventLastOffset
-- The counter is the last offset the sequencer gave, kept when old events are pruned.
SELECT value AS "offset" FROM {{schema}}.event_counter;

-- name: eventLogPrune
-- Deletes the log rows recorded before $1 among the $2 oldest by offset; each holds one statement's events. Rows
-- still waiting for an offset are never among them. The newest row stays, as the Store contract says (here the
-- counter, not the log, keeps the last offset).
DELETE FROM {{schema}}.event_log
WHERE "offset" = ANY (ARRAY(
  SELECT "offset" FROM (
    SELECT "offset", at FROM {{schema}}.event_log WHERE "offset" IS NOT NULL ORDER BY "offset" LIMIT $2::integer
  ) oldest
  WHERE at < $1::timestamptz
    AND "offset" < (SELECT "offset" FROM {{schema}}.event_log WHERE "offset" IS NOT NULL ORDER BY "offset" DESC LIMIT 1)
));

-- name: queueCounts
-- Tasks per queue and state: the sum of the shards.
SELECT queue, state, sum(count)::bigint AS count FROM {{schema}}.queue_counts GROUP BY queue, state HAVING sum(count) <> 0;

-- name: queueList
SELECT name, paused, concurrency FROM {{schema}}.queues;

-- name: queueSetConcurrency
-- Sets queue $1's concurrency ($2; null: each node's own) at $3; a queue set before it has tasks keeps it.
INSERT INTO {{schema}}.queues (name, paused, concurrency, updated_at) VALUES ($1::text, false, $2::integer, $3::timestamptz)
ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, updated_at = excluded.updated_at;

-- name: statsAppend
-- Node $2's bucket starting $1 (a node writes each of its buckets once; a repeat replaces it).
INSERT INTO {{schema}}.task_stats (at, node, completed, failed, retried, run, wait)
VALUES ($1::timestamptz, $2::text, $3::integer, $4::integer, $5::integer, $6::jsonb, $7::jsonb)
ON CONFLICT (at, node) DO UPDATE SET completed = excluded.completed, failed = excluded.failed,
  retried = excluded.retried, run = excluded.run, wait = excluded.wait;

-- name: statsList
SELECT at, node, completed, failed, retried, run, wait FROM {{schema}}.task_stats
WHERE at >= $1::timestamptz ORDER BY at, node;

-- name: statsPrune
DELETE FROM {{schema}}.task_stats WHERE at < $1::timestamptz;

-- name: queueSetPaused
-- Pauses ($2 true) or resumes queue $1 at $3; a queue paused before it has tasks stays paused.
INSERT INTO {{schema}}.queues (name, paused, updated_at) VALUES ($1::text, $2::boolean, $3::timestamptz)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at;

-- name: nodeHeartbeat
-- Inserts or refreshes node $1's row (name, host, pid, version, roles, started_at, heartbeat at $8, info).
-- Committed without waiting for the WAL flush (set_config in the row's source): a beat lost in a server crash is
-- only an older heartbeat, refreshed by the next beat one interval later.
INSERT INTO {{schema}}.nodes (id, name, host, pid, version, roles, started_at, heartbeat_at, info)
SELECT $1::text, $2::text, $3::text, $4::integer, $5::text, $6::text[], $7::timestamptz, $8::timestamptz, $9::jsonb
FROM (SELECT set_config('synchronous_commit', 'off', true) AS async_commit) AS settings
WHERE settings.async_commit = 'off'
ON CONFLICT (id) DO UPDATE SET name = excluded.name, host = excluded.host, pid = excluded.pid, version = excluded.version,
  roles = excluded.roles, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, info = excluded.info;

-- name: nodeList
SELECT * FROM {{schema}}.nodes ORDER BY started_at, id;

-- name: nodeRemove
DELETE FROM {{schema}}.nodes WHERE id = $1::text;

-- name: nodePrune
DELETE FROM {{schema}}.nodes WHERE heartbeat_at < $1::timestamptz;

-- name: leaseAcquire
-- Takes lease $1 for node $2 until $3 when free or expired at $4, renews it when held by $2; holds nothing otherwise.
INSERT INTO {{schema}}.leases (name, node, expires_at) VALUES ($1::text, $2::text, $3::timestamptz)
ON CONFLICT (name) DO UPDATE SET node = excluded.node, expires_at = excluded.expires_at
WHERE leases.node = excluded.node OR leases.expires_at <= $4::timestamptz
RETURNING node;

-- name: leaseRelease
DELETE FROM {{schema}}.leases WHERE name = $1::text AND node = $2::text;

-- name: leaseGet
SELECT * FROM {{schema}}.leases WHERE name = $1::text;

-- name: scheduleUpsert
-- Creates or replaces schedule $1 at $8; last_tick and created_at are kept when it exists.
INSERT INTO {{schema}}.schedules (name, cron, timezone, type, data, options, enabled, created_at, updated_at)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::jsonb, $7::boolean, $8::timestamptz, $8::timestamptz)
ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, type = excluded.type,
  data = excluded.data, options = excluded.options, enabled = excluded.enabled, updated_at = excluded.updated_at
RETURNING *;

-- name: scheduleList
SELECT * FROM {{schema}}.schedules ORDER BY name;

-- name: scheduleGet
SELECT * FROM {{schema}}.schedules WHERE name = $1::text;

-- name: scheduleDelete
DELETE FROM {{schema}}.schedules WHERE name = $1::text;

-- name: scheduleAdvance
-- Claims tick $2 of schedule $1 at $3: succeeds only if no tick at or after it has fired. Concurrent firers of one
-- tick queue on the row lock; once the first commits, the others re-check last_tick and match nothing.
UPDATE {{schema}}.schedules SET last_tick = $2::timestamptz, updated_at = $3::timestamptz
WHERE name = $1::text AND enabled AND (last_tick IS NULL OR last_tick < $2::timestamptz)
RETURNING name;
