-- SQLite statements on the events, queues, nodes and migrations tables.

-- name: eventInsert
INSERT INTO events (type, task_id, queue, data, at) VALUES (:type, :task_id, :queue, :data, :at);

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
