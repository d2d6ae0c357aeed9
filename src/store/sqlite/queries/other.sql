-- SQLite statements on the events, queues, nodes and migrations tables.

-- name: eventInsertBatch
-- Appends a transaction's events in one statement; :events is a JSON array of [type, task_id, queue, data, at],
-- inserted in array order (json_each walks it in order, and rowids follow insertion order).
INSERT INTO events (type, task_id, queue, data, at)
SELECT value ->> 0, value ->> 1, value ->> 2, value -> 3, value ->> 4 FROM json_each(:events) ORDER BY key;

-- name: eventList
SELECT * FROM events WHERE offset > :after ORDER BY offset LIMIT :limit;

-- name: eventListForTask
SELECT * FROM events WHERE task_id = :task_id AND offset > :after ORDER BY offset LIMIT :limit;

-- name: eventLastOffset
SELECT coalesce(max(offset), 0) AS offset FROM events;

-- name: eventPrune
DELETE FROM events WHERE offset IN (SELECT offset FROM events WHERE at < :before ORDER BY offset LIMIT :limit);

-- name: queueList
SELECT name, paused FROM queues;

-- name: queueSetPaused
INSERT INTO queues (name, paused, updated_at) VALUES (:name, :paused, :now)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at;

-- name: nodeHeartbeat
INSERT INTO nodes (id, name, host, pid, version, roles, started_at, heartbeat_at, info)
VALUES (:id, :name, :host, :pid, :version, :roles, :started_at, :now, :info)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, host = excluded.host, pid = excluded.pid, version = excluded.version,
  roles = excluded.roles, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, info = excluded.info;

-- name: nodeList
SELECT * FROM nodes ORDER BY started_at, id;

-- name: nodeRemove
DELETE FROM nodes WHERE id = :id;

-- name: nodePrune
DELETE FROM nodes WHERE heartbeat_at < :before;

-- name: leaseAcquire
-- Takes the lease when free or expired, renews it when held by :node; holds nothing otherwise.
INSERT INTO leases (name, node, expires_at) VALUES (:name, :node, :expires_at)
ON CONFLICT (name) DO UPDATE SET node = excluded.node, expires_at = excluded.expires_at
WHERE leases.node = excluded.node OR leases.expires_at <= :now
RETURNING node;

-- name: leaseRelease
DELETE FROM leases WHERE name = :name AND node = :node;

-- name: leaseGet
SELECT * FROM leases WHERE name = :name;

-- name: scheduleUpsert
INSERT INTO schedules (name, cron, timezone, type, data, options, enabled, created_at, updated_at)
VALUES (:name, :cron, :timezone, :type, :data, :options, :enabled, :now, :now)
ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, type = excluded.type,
  data = excluded.data, options = excluded.options, enabled = excluded.enabled, updated_at = excluded.updated_at
RETURNING *;

-- name: scheduleList
SELECT * FROM schedules ORDER BY name;

-- name: scheduleGet
SELECT * FROM schedules WHERE name = :name;

-- name: scheduleDelete
DELETE FROM schedules WHERE name = :name;

-- name: scheduleAdvance
-- Claims tick :tick of a schedule: succeeds only if no tick at or after it has fired.
UPDATE schedules SET last_tick = :tick, updated_at = :now
WHERE name = :name AND enabled = 1 AND (last_tick IS NULL OR last_tick < :tick)
RETURNING name;
