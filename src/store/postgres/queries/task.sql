-- PostgreSQL statements on the tasks table, run as named prepared statements; {{schema}} is the quoted schema.
--
-- Each operation is ONE statement, so one round trip and one (implicit) transaction (scheduleFire alone runs two,
-- scheduleAdvance then taskInsert, in one transaction). A statement that changes tasks appends their events in
-- the same statement, through two CTEs at its end:
--   counter  takes the offsets: UPDATE event_counter SET value = value + n (only when n > 0);
--   appended inserts the events at value - n + 1 .. value, in a fixed order.
-- The counter row is locked by that UPDATE until COMMIT, which follows at once (see 001_init.sql for why this
-- makes offsets gap-free in commit order). The counter reads `count(*)` of the changed rows, so every task row
-- is locked and written before the counter is asked for: the counter is always the last lock a writer takes,
-- and no writer holding it waits for anything else.

-- name: taskInsert
-- Inserts tasks from parallel arrays (queue, type, data, priority, max_attempts, run_at, key, timeout_ms, backoff_ms; $10 now); an input whose key an active task holds inserts nothing. Returns id, key and state of the new rows: the driver knows every other column already, and reading back 500 full rows costs more than inserting them.
WITH input AS (
  SELECT *
  FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::integer[], $5::integer[], $6::timestamptz[], $7::text[],
              $8::bigint[], $9::bigint[])
    WITH ORDINALITY AS i(queue, type, data, priority, max_attempts, run_at, key, timeout_ms, backoff_ms, n)
),
inserted AS (
  INSERT INTO {{schema}}.tasks (queue, type, data, priority, state, max_attempts, run_at, key, timeout_ms, backoff_ms, created_at)
  SELECT queue, type, data, priority, CASE WHEN run_at > $10::timestamptz THEN 'scheduled' ELSE 'queued' END,
         max_attempts, run_at, key, timeout_ms, backoff_ms, $10::timestamptz
  FROM input
  ORDER BY n
  ON CONFLICT (key) WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'running') DO NOTHING
  RETURNING id, queue, type, state, run_at, key
),
counter AS (
  UPDATE {{schema}}.event_counter SET value = value + (SELECT count(*) FROM inserted)
  WHERE EXISTS (SELECT 1 FROM inserted)
  RETURNING value
),
appended AS (
  INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at)
  SELECT (SELECT value FROM counter) - count(*) OVER () + row_number() OVER (ORDER BY c.id), 'task.created', c.id, c.queue,
         jsonb_build_object('type', c.type, 'state', c.state,
                            'runAt', to_char(c.run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
         $10::timestamptz
  FROM inserted c
)
SELECT id, key, state FROM inserted ORDER BY id;

-- name: taskGetActiveByKeys
-- The active tasks holding any of the keys $1: what a conflicting insert returns instead of a new task.
SELECT * FROM {{schema}}.tasks WHERE key = ANY($1::text[]) AND state IN ('scheduled', 'queued', 'running');

-- name: taskGet
SELECT * FROM {{schema}}.tasks WHERE id = $1::bigint;

-- name: taskClaim
-- Claims up to $4 queued tasks of queue $1 whose type is in $2 for node $3 at $5, best priority first, then FIFO.
-- The CTE reads the tasks_claim index in order and locks what it takes, skipping rows another claimer holds
-- (SKIP LOCKED), so concurrent claimers never wait for each other nor take a task twice. It is also an
-- optimisation fence: the UPDATE cannot be planned as a loop that touches more rows than the LIMIT.
WITH picked AS (
  SELECT id FROM {{schema}}.tasks
  WHERE state = 'queued' AND queue = $1::text AND type = ANY($2::text[])
    AND NOT EXISTS (SELECT 1 FROM {{schema}}.queues q WHERE q.name = $1::text AND q.paused)
  ORDER BY priority DESC, id
  LIMIT $4::integer
  FOR UPDATE SKIP LOCKED
),
claimed AS (
  UPDATE {{schema}}.tasks t
  SET state = 'running', attempt = t.attempt + 1, node = $3::text, started_at = $5::timestamptz, progress = NULL
  FROM picked
  WHERE t.id = picked.id AND t.state = 'queued'
  RETURNING t.*
),
counter AS (
  UPDATE {{schema}}.event_counter SET value = value + (SELECT count(*) FROM claimed)
  WHERE EXISTS (SELECT 1 FROM claimed)
  RETURNING value
),
appended AS (
  INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at)
  SELECT (SELECT value FROM counter) - count(*) OVER () + row_number() OVER (ORDER BY c.priority DESC, c.id), 'task.started', c.id,
         c.queue, jsonb_build_object('attempt', c.attempt, 'node', c.node), $5::timestamptz
  FROM claimed c
)
SELECT * FROM claimed ORDER BY priority DESC, id;

-- name: taskComplete
-- Completes a batch of running attempts (parallel arrays: ids $1, attempts $2, results $3; at $4); a stale attempt matches no row. Returns the completed ids in input order.
WITH input AS (
  SELECT * FROM unnest($1::bigint[], $2::integer[], $3::jsonb[]) WITH ORDINALITY AS i(id, attempt, result, n)
),
completed AS (
  UPDATE {{schema}}.tasks t
  SET state = 'completed', result = i.result, finished_at = $4::timestamptz
  FROM input i
  WHERE t.id = i.id AND t.attempt = i.attempt AND t.state = 'running'
  RETURNING t.id, t.queue, t.attempt, i.n
),
counter AS (
  UPDATE {{schema}}.event_counter SET value = value + (SELECT count(*) FROM completed)
  WHERE EXISTS (SELECT 1 FROM completed)
  RETURNING value
),
appended AS (
  INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at)
  SELECT (SELECT value FROM counter) - count(*) OVER () + row_number() OVER (ORDER BY c.n), 'task.completed', c.id, c.queue,
         jsonb_build_object('attempt', c.attempt), $4::timestamptz
  FROM completed c
)
SELECT id FROM completed ORDER BY n;

-- name: taskFailFinal
-- Fails running attempt $2 of task $1 for good with error $3 (history bounded to $4 entries) at $5.
WITH failed AS (
  UPDATE {{schema}}.tasks t
  SET state = 'failed', error = $3::jsonb, errors = {{schema}}.append_error(t.errors, $3::jsonb, $4::integer),
      finished_at = $5::timestamptz
  WHERE t.id = $1::bigint AND t.attempt = $2::integer AND t.state = 'running'
  RETURNING t.*
),
counter AS (
  UPDATE {{schema}}.event_counter SET value = value + (SELECT count(*) FROM failed)
  WHERE EXISTS (SELECT 1 FROM failed)
  RETURNING value
),
appended AS (
  INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at)
  SELECT (SELECT value FROM counter), 'task.failed', c.id, c.queue, jsonb_build_object('attempt', c.attempt, 'error', c.error ->> 'message'),
         $5::timestamptz
  FROM failed c
)
SELECT * FROM failed;

-- name: taskFailRetry
-- Sends running attempt $2 of task $1 back to scheduled at $5 with error $3 (history bounded to $4) at $6; $7 is $5 as ISO text.
WITH failed AS (
  UPDATE {{schema}}.tasks t
  SET state = 'scheduled', run_at = $5::timestamptz, error = $3::jsonb,
      errors = {{schema}}.append_error(t.errors, $3::jsonb, $4::integer)
  WHERE t.id = $1::bigint AND t.attempt = $2::integer AND t.state = 'running'
  RETURNING t.*
),
counter AS (
  UPDATE {{schema}}.event_counter SET value = value + (SELECT count(*) FROM failed)
  WHERE EXISTS (SELECT 1 FROM failed)
  RETURNING value
),
appended AS (
  INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at)
  SELECT (SELECT value FROM counter), 'task.retrying', c.id, c.queue,
         jsonb_build_object('attempt', c.attempt, 'error', c.error ->> 'message', 'runAt', $7::text), $6::timestamptz
  FROM failed c
)
SELECT * FROM failed;

-- name: taskCancel
-- Cancels task $1 if active, for reason $2 at $3 ($4: $3 as ISO text; history bounded to $5). Returns the row before ('before') and, when it was active, after ('after').
WITH found AS (
  SELECT * FROM {{schema}}.tasks WHERE id = $1::bigint FOR UPDATE
),
cancelled AS (
  UPDATE {{schema}}.tasks t
  SET (state, finished_at, error, errors) = (
    SELECT 'cancelled', $3::timestamptz, r.rec, {{schema}}.append_error(t.errors, r.rec, $5::integer)
    FROM (SELECT jsonb_build_object('name', 'CancelledError', 'message', $2::text, 'attempt', t.attempt, 'at', $4::text) AS rec) r
  )
  FROM found f
  WHERE t.id = f.id AND t.state IN ('scheduled', 'queued', 'running')
  RETURNING t.*
),
counter AS (
  UPDATE {{schema}}.event_counter SET value = value + (SELECT count(*) FROM cancelled)
  WHERE EXISTS (SELECT 1 FROM cancelled)
  RETURNING value
),
appended AS (
  INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at)
  SELECT (SELECT value FROM counter), 'task.cancelled', c.id, c.queue, jsonb_build_object('previousState', f.state, 'reason', $2::text),
         $3::timestamptz
  FROM cancelled c JOIN found f ON f.id = c.id
)
SELECT 'after' AS version, * FROM cancelled
UNION ALL
SELECT 'before' AS version, * FROM found;

-- name: taskRerun
-- Runs failed or cancelled task $1 again from attempt 0 at $2. Returns the row before ('before') and, when it was rerun, after ('after'); a key now held by another active task raises a unique violation.
WITH found AS (
  SELECT * FROM {{schema}}.tasks WHERE id = $1::bigint FOR UPDATE
),
rerun AS (
  UPDATE {{schema}}.tasks t
  SET state = 'queued', attempt = 0, stalls = 0, run_at = $2::timestamptz, node = NULL, progress = NULL, result = NULL,
      started_at = NULL, finished_at = NULL
  FROM found f
  WHERE t.id = f.id AND t.state IN ('failed', 'cancelled')
  RETURNING t.*
),
counter AS (
  UPDATE {{schema}}.event_counter SET value = value + (SELECT count(*) FROM rerun)
  WHERE EXISTS (SELECT 1 FROM rerun)
  RETURNING value
),
appended AS (
  INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at)
  SELECT (SELECT value FROM counter), 'task.rerun', c.id, c.queue, jsonb_build_object('previousState', f.state), $2::timestamptz
  FROM rerun c JOIN found f ON f.id = c.id
)
SELECT 'after' AS version, * FROM rerun
UNION ALL
SELECT 'before' AS version, * FROM found;

-- name: taskProgress
-- Records progress $3 of running attempt $2 of task $1 at $4; a stale attempt matches no row.
WITH updated AS (
  UPDATE {{schema}}.tasks SET progress = $3::jsonb
  WHERE id = $1::bigint AND attempt = $2::integer AND state = 'running'
  RETURNING id, queue, attempt
),
counter AS (
  UPDATE {{schema}}.event_counter SET value = value + (SELECT count(*) FROM updated)
  WHERE EXISTS (SELECT 1 FROM updated)
  RETURNING value
),
appended AS (
  INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at)
  SELECT (SELECT value FROM counter), 'task.progress', c.id, c.queue, jsonb_build_object('attempt', c.attempt) || $3::jsonb,
         $4::timestamptz
  FROM updated c
)
SELECT id FROM updated;

-- name: taskPromote
-- Moves up to $2 scheduled tasks due at $1 to queued, earliest first (tasks_scheduled index); a concurrent promoter skips what this one holds.
WITH due AS (
  SELECT id FROM {{schema}}.tasks
  WHERE state = 'scheduled' AND run_at <= $1::timestamptz
  ORDER BY run_at
  LIMIT $2::integer
  FOR UPDATE SKIP LOCKED
),
promoted AS (
  UPDATE {{schema}}.tasks t SET state = 'queued'
  FROM due
  WHERE t.id = due.id AND t.state = 'scheduled'
  RETURNING t.id, t.queue, t.run_at
),
counter AS (
  UPDATE {{schema}}.event_counter SET value = value + (SELECT count(*) FROM promoted)
  WHERE EXISTS (SELECT 1 FROM promoted)
  RETURNING value
),
appended AS (
  INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at)
  SELECT (SELECT value FROM counter) - count(*) OVER () + row_number() OVER (ORDER BY c.run_at, c.id), 'task.promoted', c.id, c.queue,
         'null'::jsonb, $1::timestamptz
  FROM promoted c
)
SELECT id, queue FROM promoted;

-- name: taskNextRunAt
SELECT min(run_at) AS run_at FROM {{schema}}.tasks WHERE state = 'scheduled';

-- name: taskStates
SELECT id, state, attempt FROM {{schema}}.tasks WHERE id = ANY($1::bigint[]);

-- name: taskRescue
-- Puts running tasks of nodes silent since $2 (or without a node row), never rescuer $1's own, back to queued at $4 counting a stall, or fails them past $3 stalls or out of attempts ($5: $4 as ISO text; history bounded to $6).
WITH stalled AS (
  SELECT t.id FROM {{schema}}.tasks t
  WHERE t.state = 'running' AND t.node <> $1::text
    AND NOT EXISTS (SELECT 1 FROM {{schema}}.nodes n WHERE n.id = t.node AND n.heartbeat_at >= $2::timestamptz)
  FOR UPDATE OF t SKIP LOCKED
),
rescued AS (
  UPDATE {{schema}}.tasks t
  SET (state, stalls, run_at, finished_at, error, errors) = (
    SELECT CASE WHEN r.final THEN 'failed' ELSE 'queued' END,
           t.stalls + 1,
           CASE WHEN r.final THEN t.run_at ELSE $4::timestamptz END,
           CASE WHEN r.final THEN $4::timestamptz ELSE t.finished_at END,
           r.rec,
           {{schema}}.append_error(t.errors, r.rec, $6::integer)
    FROM (
      SELECT t.stalls + 1 > $3::integer OR t.attempt >= t.max_attempts AS final,
             jsonb_build_object(
               'name', 'StalledError',
               'message', format('node %s stopped while running attempt %s (stall %s)', coalesce(t.node, '?'), t.attempt, t.stalls + 1),
               'attempt', t.attempt,
               'at', $5::text) AS rec
    ) r
  )
  FROM stalled s
  WHERE t.id = s.id AND t.state = 'running'
  RETURNING t.*
),
counter AS (
  UPDATE {{schema}}.event_counter SET value = value + (SELECT count(*) FROM rescued)
  WHERE EXISTS (SELECT 1 FROM rescued)
  RETURNING value
),
appended AS (
  INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at)
  SELECT (SELECT value FROM counter) - count(*) OVER () + row_number() OVER (ORDER BY c.id),
         CASE WHEN c.state = 'failed' THEN 'task.failed' ELSE 'task.rescued' END, c.id, c.queue,
         jsonb_build_object('attempt', c.attempt, 'node', c.node, 'stalls', c.stalls, 'error', c.error ->> 'message'),
         $4::timestamptz
  FROM rescued c
)
SELECT * FROM rescued ORDER BY id;

-- name: taskRelease
-- Hands node $1's running tasks (all, or those in $2 when it is not null) back to the queue at $3. The attempt number stays (it fences off the interrupted run) and the budget grows by one, so the run is not held against the task.
WITH released AS (
  UPDATE {{schema}}.tasks
  SET state = 'queued', run_at = $3::timestamptz, progress = NULL, max_attempts = max_attempts + 1
  WHERE state = 'running' AND node = $1::text AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))
  RETURNING id, queue, attempt
),
counter AS (
  UPDATE {{schema}}.event_counter SET value = value + (SELECT count(*) FROM released)
  WHERE EXISTS (SELECT 1 FROM released)
  RETURNING value
),
appended AS (
  INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at)
  SELECT (SELECT value FROM counter) - count(*) OVER () + row_number() OVER (ORDER BY c.id), 'task.rescued', c.id, c.queue,
         jsonb_build_object('attempt', c.attempt, 'node', $1::text, 'released', true), $3::timestamptz
  FROM released c
)
SELECT id FROM released ORDER BY id;

-- name: taskPrune
-- Deletes up to $2 tasks that finished before $1, oldest first (tasks_finished index).
WITH doomed AS (
  SELECT id FROM {{schema}}.tasks
  WHERE state IN ('completed', 'failed', 'cancelled') AND finished_at < $1::timestamptz
  ORDER BY finished_at
  LIMIT $2::integer
  FOR UPDATE SKIP LOCKED
)
DELETE FROM {{schema}}.tasks t USING doomed WHERE t.id = doomed.id;

-- name: taskCountsByQueue
SELECT queue, state, count(*) AS count FROM {{schema}}.tasks GROUP BY queue, state;
