-- PostgreSQL statements on the events, queues, nodes, leases and schedules tables; {{schema}} is the quoted schema.

-- name: eventList
-- Events after offset $1, at most $2. Offsets are dense and in commit order (001_init.sql), so a reader that
-- moves its cursor to the last offset it saw never skips an event committed later.
SELECT * FROM {{schema}}.events WHERE "offset" > $1::bigint ORDER BY "offset" LIMIT $2::integer;

-- name: eventListForTask
-- Events of task $1 after offset $2, at most $3 (events_task index).
SELECT * FROM {{schema}}.events WHERE task_id = $1::bigint AND "offset" > $2::bigint ORDER BY "offset" LIMIT $3::integer;

-- name: eventLastOffset
-- The counter is the highest committed offset, kept when old events are pruned.
SELECT value AS "offset" FROM {{schema}}.event_counter;

-- name: eventPrune
-- Deletes up to $2 events recorded before $1, oldest first.
DELETE FROM {{schema}}.events
WHERE "offset" IN (SELECT "offset" FROM {{schema}}.events WHERE at < $1::timestamptz ORDER BY "offset" LIMIT $2::integer);

-- name: queueList
SELECT name, paused FROM {{schema}}.queues;

-- name: queueSetPaused
-- Pauses ($2 true) or resumes queue $1 at $3; a queue paused before it has tasks stays paused.
INSERT INTO {{schema}}.queues (name, paused, updated_at) VALUES ($1::text, $2::boolean, $3::timestamptz)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at;

-- name: nodeHeartbeat
-- Inserts or refreshes node $1's row (name, host, pid, version, roles, started_at, heartbeat at $8, info).
INSERT INTO {{schema}}.nodes (id, name, host, pid, version, roles, started_at, heartbeat_at, info)
VALUES ($1::text, $2::text, $3::text, $4::integer, $5::text, $6::text[], $7::timestamptz, $8::timestamptz, $9::jsonb)
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
