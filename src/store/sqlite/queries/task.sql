-- SQLite statements on the tasks table. Parameters are named (:name) unless a statement says otherwise; times are
-- epoch milliseconds. A statement named as one in postgres/queries/ does that one's job for this driver.
-- :ref is ' <offset>', the offset of the event-log row the transaction writes; a statement that records an
-- event for a task appends it to the task's event_refs.

-- name: taskInsertOne
-- Inserts one task; an active task holding its key makes it insert nothing (the partial unique index decides).
-- Positional parameters, in column order: a batch with keys runs this once per task, and binding an array is
-- about twice as fast as binding named values (the batch JSON-decoded by json_each, slower still). A task started
-- at once is inserted running: attempt 1, node and started_at set; otherwise attempt 0 and the last two null.
INSERT INTO tasks (queue, type, data, priority, state, max_attempts, run_at, key, timeout_ms, backoff_ms, created_at,
                   event_refs, attempt, node, started_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING;

-- name: taskInsert
-- Inserts several tasks ({{rows}}: one parenthesised list per task) in one statement, each row's parameters as in
-- taskInsertOne. Only for tasks without a key: nothing can conflict, so the ids are consecutive and the last one
-- tells them all. About half again as fast as one taskInsertOne per task (one statement to step through, one call
-- into SQLite).
INSERT INTO tasks (queue, type, data, priority, state, max_attempts, run_at, key, timeout_ms, backoff_ms, created_at,
                   event_refs, attempt, node, started_at)
VALUES {{rows}};

-- name: queuePaused
-- A row when queue :name is paused: an insert does not start its tasks then.
SELECT paused FROM queues WHERE name = :name AND paused = 1;

-- name: taskGetActiveByKey
-- The active task holding key :key: what a conflicting insert returns instead of a new task.
-- The state list is ACTIVE_STATES of core/states.ts, spelled out: SQL cannot import it.
SELECT * FROM tasks WHERE key = :key AND state IN ('scheduled', 'queued', 'running');

-- name: taskGet
SELECT * FROM tasks WHERE id = :id;

-- name: taskIdRange
-- Two subqueries: SQLite reads an end of the primary key for a lone min() or max(), and scans the table for both.
SELECT (SELECT min(id) FROM tasks) AS min, (SELECT max(id) FROM tasks) AS max;

-- name: taskCreatedFrom
SELECT id, created_at FROM tasks WHERE id >= :id ORDER BY id LIMIT 1;

-- name: taskClaim
-- Claims up to :limit queued tasks of :queue whose type is in :types (a JSON array), best priority first, then
-- FIFO. Nothing is claimed from a paused queue. The index tasks_claim serves the inner SELECT in order.
UPDATE tasks
SET state = 'running', attempt = attempt + 1, node = :node, started_at = :now, progress = NULL,
    event_refs = event_refs || :ref
WHERE id IN (
  SELECT id FROM tasks
  WHERE state = 'queued' AND queue = :queue
    AND type IN (SELECT value FROM json_each(:types))
    AND NOT EXISTS (SELECT 1 FROM queues WHERE name = :queue AND paused = 1)
  ORDER BY priority DESC, id
  LIMIT :limit
)
-- Only the columns a claim does not set itself, read as arrays (claimedToTask): the hot path's row mapping.
RETURNING id, queue, type, data, priority, attempt, max_attempts, stalls, run_at, key, error, errors, timeout_ms,
  backoff_ms, created_at;

-- name: taskComplete
-- Completes running attempts ({{rows}}: one `(?, ?, ?, ?)` per completion: id, attempt, queue, result) at the first
-- parameter, with the event-log ref as the second. A stale attempt, or a queue that is not the task's, matches no
-- row. One statement for a batch (the driver prepares one per batch size) rather than one per completion: claim +
-- complete of 50 costs 14.6 µs per task, against 18.0 µs with a statement per completion (minimum of 11 runs, CPU
-- time). Returns the ids completed.
UPDATE tasks SET state = 'completed', result = c.column4, finished_at = ?, event_refs = event_refs || ?
FROM (VALUES {{rows}}) AS c
WHERE tasks.id = c.column1 AND tasks.state = 'running' AND tasks.attempt = c.column2 AND tasks.queue = c.column3
RETURNING tasks.id;

-- name: taskGetRunningAttempt
-- Task :id if it is running attempt :attempt (taskFail reads its error history first).
SELECT * FROM tasks WHERE id = :id AND attempt = :attempt AND state = 'running';

-- name: taskFail
-- Fails a running attempt: back to scheduled at :run_at for a retry, or failed for good when :run_at is null.
UPDATE tasks SET state = CASE WHEN :run_at IS NULL THEN 'failed' ELSE 'scheduled' END, run_at = coalesce(:run_at, run_at),
    error = :error, errors = :errors, finished_at = CASE WHEN :run_at IS NULL THEN :now END, event_refs = event_refs || :ref
WHERE id = :id AND attempt = :attempt AND state = 'running'
RETURNING *;

-- name: taskCancel
-- Cancels task :id if it is active.
UPDATE tasks SET state = 'cancelled', error = :error, errors = :errors, finished_at = :now, event_refs = event_refs || :ref
-- The state list is ACTIVE_STATES of core/states.ts, spelled out: SQL cannot import it.
WHERE id = :id AND state IN ('scheduled', 'queued', 'running')
RETURNING *;

-- name: taskRerun
-- Runs failed or cancelled task :id again from attempt 0; a key another active task holds now raises a unique
-- violation.
UPDATE tasks
SET state = 'queued', attempt = 0, stalls = 0, run_at = :now, node = NULL, progress = NULL, result = NULL,
    started_at = NULL, finished_at = NULL, event_refs = event_refs || :ref
-- The state list is TRANSITIONS.rerun.from of core/states.ts, spelled out: SQL cannot import it.
WHERE id = :id AND state IN ('failed', 'cancelled')
RETURNING *;

-- name: taskProgress
-- Progress events go to the log but not to the task's event_refs: a long task reports thousands of them.
UPDATE tasks SET progress = :progress
WHERE id = :id AND attempt = :attempt AND state = 'running'
RETURNING id, queue;

-- name: taskPromote
-- Moves due scheduled tasks to queued, earliest first (tasks_scheduled index).
UPDATE tasks SET state = 'queued', event_refs = event_refs || :ref
WHERE id IN (SELECT id FROM tasks WHERE state = 'scheduled' AND run_at <= :now ORDER BY run_at LIMIT :limit)
RETURNING id, queue;

-- name: taskNextRunAt
SELECT min(run_at) AS run_at FROM tasks WHERE state = 'scheduled';

-- name: taskStates
SELECT id, state, attempt, type FROM tasks WHERE id IN (SELECT value FROM json_each(:ids));

-- name: taskFinishedAmong
-- The finished tasks among the listed ids (a JSON array): those a person may delete.
-- The state list is FINAL_STATES of core/states.ts, spelled out: SQL cannot import it.
SELECT id, queue, state FROM tasks
WHERE id IN (SELECT value FROM json_each(:ids)) AND state IN ('completed', 'failed', 'cancelled');

-- name: taskRunningOnDeadNodes
-- Running tasks whose node has no heartbeat since :dead_before, or no row at all; never the rescuer's own.
SELECT * FROM tasks t
WHERE t.state = 'running' AND t.node <> :rescuer
  AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = t.node AND n.heartbeat_at >= :dead_before);

-- name: taskRunningAmong
-- The node's own running tasks among :ids (a JSON array), which it stopped when it fenced itself.
SELECT * FROM tasks
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'running' AND node = :node;

-- name: taskRescueRetry
UPDATE tasks SET state = 'queued', stalls = stalls + 1, run_at = :now, error = :error, errors = :errors,
  event_refs = event_refs || :ref
WHERE id = :id AND attempt = :attempt AND state = 'running'
RETURNING *;

-- name: taskRescueFail
UPDATE tasks SET state = 'failed', stalls = stalls + 1, error = :error, errors = :errors, finished_at = :now,
  event_refs = event_refs || :ref
WHERE id = :id AND attempt = :attempt AND state = 'running'
RETURNING *;

-- name: taskRelease
-- Hands a node's running tasks (all, or those in :ids when it is not null) back to the queue. The attempt
-- number stays (it fences off the interrupted run) and the budget grows by one, so the run is not held
-- against the task.
UPDATE tasks SET state = 'queued', run_at = :now, progress = NULL, max_attempts = max_attempts + 1,
  event_refs = event_refs || :ref
WHERE state = 'running' AND node = :node
  AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))
RETURNING id, queue, attempt;

-- name: taskPruneWindow
-- The next :size tasks in id order after :after. The pruner walks the table this way instead of keeping an
-- index over finished_at that every completion would write to.
SELECT id, queue, state, created_at, finished_at FROM tasks WHERE id > :after ORDER BY id LIMIT :size;

-- name: taskDelete
-- Deletes the listed tasks (a JSON array of ids) if they are still finished.
DELETE FROM tasks
-- The state list is FINAL_STATES of core/states.ts, spelled out: SQL cannot import it.
WHERE id IN (SELECT value FROM json_each(:ids)) AND state IN ('completed', 'failed', 'cancelled');

-- name: taskEventRefs
SELECT event_refs FROM tasks WHERE id = :id;
