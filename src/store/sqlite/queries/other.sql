-- SQLite statements on the event log, queue counts, queues, nodes, leases and schedules tables. Parameters are
-- named (:name) unless a statement says otherwise; times are epoch milliseconds.

-- name: eventLogAppend
-- Appends a transaction's events as one row; :events is a JSON array of entries [type, task_id, queue, data],
-- where task_id may be an array [id, ...]: one event per id, in order, all alike (the driver's LogEntry).
INSERT INTO event_log (offset, count, at, events) VALUES (:offset, :count, :at, :events);

-- name: eventLogEpoch
SELECT value AS epoch FROM log_meta WHERE key = 'epoch';

-- name: eventLogOldestOffset
-- The first offset the log still holds (null when it holds none).
SELECT offset FROM event_log ORDER BY offset LIMIT 1;

-- name: eventLogNextOffset
SELECT coalesce((SELECT offset + count FROM event_log ORDER BY offset DESC LIMIT 1), 1) AS offset;

-- name: eventLogAfter
-- Log rows that may hold events after :after, in offset order: from the row holding :after (whose first
-- events may be older), on.
SELECT offset, at, events FROM event_log
WHERE offset >= coalesce((SELECT max(offset) FROM event_log WHERE offset <= :after), 0)
ORDER BY offset LIMIT :limit;

-- name: eventLogRows
-- The log rows at the given offsets (a JSON array), in offset order.
SELECT offset, at, events FROM event_log WHERE offset IN (SELECT value FROM json_each(:offsets)) ORDER BY offset;

-- name: eventLogPrune
-- Deletes the oldest log rows recorded before :before, looking at :limit rows at most (times grow with
-- offsets, so the first row too new ends the walk). The newest row stays: it carries the last offset.
DELETE FROM event_log
WHERE offset IN (SELECT offset FROM (SELECT offset, at FROM event_log ORDER BY offset LIMIT :limit) WHERE at < :before)
  AND offset < (SELECT max(offset) FROM event_log);

-- name: queueCountsAdd
-- Adds a delta to one count (positional: queue, state, delta); a transaction runs it once per changed count,
-- usually twice (cheaper than one statement over a JSON list).
INSERT INTO queue_counts (queue, state, count) VALUES (?, ?, ?)
ON CONFLICT (queue, state) DO UPDATE SET count = count + excluded.count;

-- name: queueCounts
SELECT queue, state, count FROM queue_counts WHERE count <> 0;

-- name: queueList
SELECT name, paused, concurrency FROM queues;

-- name: queueSetConcurrency
-- Sets queue :name's concurrency (null: each node's own) at :now; a queue set before it has tasks keeps it.
INSERT INTO queues (name, paused, concurrency, updated_at) VALUES (:name, 0, :concurrency, :now)
ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, updated_at = excluded.updated_at;

-- name: statsAppend
-- Node :node's bucket starting :at (a node writes each of its buckets once; a repeat replaces it).
INSERT INTO task_stats (at, node, completed, failed, retried, run, wait)
VALUES (:at, :node, :completed, :failed, :retried, :run, :wait)
ON CONFLICT (at, node) DO UPDATE SET completed = excluded.completed, failed = excluded.failed,
  retried = excluded.retried, run = excluded.run, wait = excluded.wait;

-- name: statsList
SELECT at, node, completed, failed, retried, run, wait FROM task_stats WHERE at >= :since ORDER BY at, node;

-- name: statsPrune
DELETE FROM task_stats WHERE at < :before;

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
