-- PostgreSQL statements on the tasks table, run as named prepared statements; {{schema}} is the quoted schema.
--
-- Each operation is ONE statement, so one round trip and one (implicit) transaction (scheduleFire alone runs two,
-- scheduleAdvance then taskInsertOne, in one transaction). A statement that changes tasks also keeps the counts per
-- queue and state and appends the events, in the same statement, through CTEs (the log's design:
-- docs/event-log.md):
--   ref      draws the id of the statement's event-log row from a sequence, before any task is written; every
--            task the statement records an event for gets it appended to its event_refs;
--   counted  adds the statement's changes to queue_counts, in this connection's shard: summed per (queue, state)
--            first (ON CONFLICT may touch a row only once) and upserted in (queue, state) order, so two
--            statements that share count rows lock them in the same order;
--   logged   counts the events and builds their JSON array, in a fixed order;
--   appended inserts the log row (only when there are events), without an offset, last: it reads `logged`, so
--            every task row the statement records an event for is locked by then. Its lsn column defaults to
--            the WAL insert position at that moment, and the sequencer (event_sequence()), run by readers,
--            gives it offsets once it has committed, after every offset
--            given before, and in lsn order among the rows it finds together. A statement that waited for
--            another's lock on a task thus inserts its row after that one's commit, and its events come after.
-- No statement writes a row that every writer shares, so writers never wait for each other's COMMIT unless they
-- change the same tasks (or, rarely, the same count row), and concurrent commits can share a WAL flush. Locks
-- follow one order, task rows then count rows: `counted` aggregates every changed task row before it upserts.

-- Plans are made once per connection, often while the tables are empty (SESSION_SETTINGS in statements.ts), so a
-- statement names the task rows it changes by index conditions only: `t.id = ANY (ARRAY(SELECT id FROM picked))`,
-- never a join with its CTE (the planner may drive such a join from the table's side, reading every row of a
-- partial index for each call), and never a condition that lets a partial index over a growing state (queued,
-- scheduled, failed) stand in for the primary key. Rows a CTE locked FOR UPDATE need no second state check.

-- Statements return the task columns the driver reads, never event_refs (a task's history, read only by
-- eventList): {{task_columns}} is that list, {{t.task_columns}} the same qualified by `t.` (statements.ts).

-- A statement named as one in sqlite/queries/ does that one's job for that driver.

-- name: taskInsert
-- Inserts the tasks in $1, a JSON array with one array per task: [queue, type, data, priority, max_attempts,
-- run_at (epoch ms), key, timeout_ms, backoff_ms, start, created] where `created` is the data of its
-- task.created event (the driver builds it: formatting times here cost more than the insert), or null when the
-- batch is alike and $4 holds it for all. $2 is now. An input whose key an active task holds inserts nothing.
-- An input with `start` set, ready at $2 and in a queue that is not paused, is inserted running on node $3
-- (attempt 1), as if claimed in the same statement: its task.created event (state queued) is followed by
-- task.started. Ids are drawn in input order before the insert, so the events can be joined back to their
-- inputs. Returns [id, key, state] of the new rows, as one JSON array: the driver knows every other column
-- already, and reading back 500 full rows costs more than inserting them.
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id
),
input AS MATERIALIZED (
  SELECT nextval('{{schema}}.tasks_id_seq') AS id, r ->> 0 AS queue, r ->> 1 AS type, r -> 2 AS data,
         (r ->> 3)::integer AS priority, (r ->> 4)::integer AS max_attempts, to_timestamp((r ->> 5)::float8 / 1000) AS run_at,
         r ->> 6 AS key, (r ->> 7)::bigint AS timeout_ms, (r ->> 8)::bigint AS backoff_ms, (r ->> 9)::boolean AS start,
         r -> 10 AS created, n
  FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(r, n)
),
ready AS (
  SELECT id, queue, type, data, priority, max_attempts, run_at, key, timeout_ms, backoff_ms,
         CASE WHEN starts THEN 'running' WHEN run_at > $2::timestamptz THEN 'scheduled' ELSE 'queued' END AS state,
         CASE WHEN starts THEN 1 ELSE 0 END AS attempt, CASE WHEN starts THEN $3::text END AS node,
         CASE WHEN starts THEN $2::timestamptz END AS started_at
  FROM (SELECT i.*, i.start AND i.run_at <= $2::timestamptz
                      AND NOT EXISTS (SELECT 1 FROM {{schema}}.queues q WHERE q.name = i.queue AND q.paused) AS starts
        FROM input i) s
),
-- Tasks with a key go in through ON CONFLICT (an active task may hold the key), which costs a speculative insert
-- per row; tasks without one cannot conflict and go in plainly, about a tenth cheaper.
inserted_keyed AS (
  INSERT INTO {{schema}}.tasks (id, queue, type, data, priority, state, attempt, max_attempts, run_at, key, timeout_ms,
                                backoff_ms, node, created_at, started_at, event_refs)
  OVERRIDING SYSTEM VALUE
  SELECT id, queue, type, data, priority, state, attempt, max_attempts, run_at, key, timeout_ms, backoff_ms, node,
         $2::timestamptz, started_at, ARRAY[(SELECT id FROM ref)]
  FROM ready WHERE key IS NOT NULL
-- The predicate of tasks_key_active, the index ON CONFLICT infers: ACTIVE_STATES of core/states.ts, spelled out.
  ON CONFLICT (key) WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'running') DO NOTHING
  RETURNING id, queue, state, key
),
inserted_free AS (
  INSERT INTO {{schema}}.tasks (id, queue, type, data, priority, state, attempt, max_attempts, run_at, key, timeout_ms,
                                backoff_ms, node, created_at, started_at, event_refs)
  OVERRIDING SYSTEM VALUE
  SELECT id, queue, type, data, priority, state, attempt, max_attempts, run_at, key, timeout_ms, backoff_ms, node,
         $2::timestamptz, started_at, ARRAY[(SELECT id FROM ref)]
  FROM ready WHERE key IS NULL
  RETURNING id, queue, state, key
),
inserted AS (
  SELECT * FROM inserted_keyed UNION ALL SELECT * FROM inserted_free
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT queue, state, pg_backend_pid() % 16, count(*) FROM inserted GROUP BY queue, state ORDER BY queue, state
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
-- A batch whose events are alike (one queue, no task to start, $4 their shared task.created data) logs them as one
-- entry with a list of ids; otherwise each task has an entry (and one for its task.started).
-- (Only one branch runs: the other's constant condition is false. The alike one needs no join with the input.)
logged AS (
  SELECT count(*) + count(*) FILTER (WHERE c.state = 'running') AS n,
         '[' || string_agg(
           '["task.created",' || c.id || ',' || to_json(c.queue) || ',' || i.created
             || CASE WHEN c.state = 'running' THEN '],["task.started",' || c.id || ',' || to_json(c.queue)
                                                   || ',{"attempt":1,"node":' || to_json($3::text) || '}]'
                     ELSE ']' END,
           ',' ORDER BY c.id) || ']' AS events
  FROM inserted c JOIN input i ON i.id = c.id
  WHERE $4::jsonb IS NULL
  UNION ALL
  SELECT count(*),
         '[["task.created",[' || string_agg(c.id::text, ',' ORDER BY c.id) || '],' || to_json(min(c.queue)) || ',' || $4::jsonb || ']]'
  FROM inserted c
  WHERE $4::jsonb IS NOT NULL
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), n, $2::timestamptz, events::json FROM logged WHERE n > 0
)
SELECT json_agg(json_build_array(id, key, state) ORDER BY id) AS rows FROM inserted;

-- name: taskInsertUniform
-- taskInsert for the usual batch, whose tasks differ only in their data: no key, none to start, and one queue $1,
-- type $2, priority $3, state $4 (the driver decides: queued or scheduled), max_attempts $5, run_at $6,
-- timeout_ms $7 and backoff_ms $8. $9 is now, $10 a JSON array of the tasks' data, $11 their shared task.created
-- data. Nothing can conflict, so nothing is read per task but its data: 500 tasks execute in ~3.2 ms against
-- ~5.2 ms through taskInsert (minimum of 60, alternated). Ids are drawn in the array's order; returns them as one
-- JSON array.
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id
),
inserted AS (
  INSERT INTO {{schema}}.tasks (queue, type, data, priority, state, attempt, max_attempts, run_at, key, timeout_ms,
                                backoff_ms, node, created_at, started_at, event_refs)
  SELECT $1::text, $2::text, x.data, $3::integer, $4::text, 0, $5::integer, $6::timestamptz, NULL, $7::bigint,
         $8::bigint, NULL, $9::timestamptz, NULL, ARRAY[(SELECT id FROM ref)]
  FROM jsonb_array_elements($10::jsonb) WITH ORDINALITY AS x(data, n)
  ORDER BY x.n
  RETURNING id
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT $1::text, $4::text, pg_backend_pid() % 16, count(*) FROM inserted HAVING count(*) > 0
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), count(*), $9::timestamptz,
         ('[["task.created",[' || string_agg(id::text, ',' ORDER BY id) || '],' || to_json($1::text) || ',' || $11::text
          || ']]')::json
  FROM inserted HAVING count(*) > 0
)
SELECT json_agg(id ORDER BY id) AS ids FROM inserted;

-- name: taskInsertOne
-- taskInsert for one task, with plain parameters: queue $1, type $2, data $3, priority $4, max_attempts $5,
-- run_at $6, key $7, timeout_ms $8, backoff_ms $9, now $10, the node to start it on $11 (null: do not start) and
-- its task.created data $12. The same rules as taskInsert, in a plan a third the size: an enqueue() of one
-- task waits for it, and it returns 0.2 ms sooner than taskInsert with one task (1.65 against 1.86 ms p50,
-- enqueues 10 ms apart). Returns [[id, key, state]], or null when a key conflict inserted nothing.
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id
),
inserted AS (
  INSERT INTO {{schema}}.tasks (queue, type, data, priority, state, attempt, max_attempts, run_at, key, timeout_ms,
                                backoff_ms, node, created_at, started_at, event_refs)
  SELECT $1::text, $2::text, $3::jsonb, $4::integer,
         CASE WHEN starts THEN 'running' WHEN $6::timestamptz > $10::timestamptz THEN 'scheduled' ELSE 'queued' END,
         CASE WHEN starts THEN 1 ELSE 0 END, $5::integer, $6::timestamptz, $7::text, $8::bigint, $9::bigint,
         CASE WHEN starts THEN $11::text END, $10::timestamptz, CASE WHEN starts THEN $10::timestamptz END,
         ARRAY[(SELECT id FROM ref)]
  FROM (SELECT $11::text IS NOT NULL AND $6::timestamptz <= $10::timestamptz
                 AND NOT EXISTS (SELECT 1 FROM {{schema}}.queues q WHERE q.name = $1::text AND q.paused) AS starts) s
-- The predicate of tasks_key_active, the index ON CONFLICT infers: ACTIVE_STATES of core/states.ts, spelled out.
  ON CONFLICT (key) WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'running') DO NOTHING
  RETURNING id, queue, state, key
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT queue, state, pg_backend_pid() % 16, 1 FROM inserted
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), CASE WHEN c.state = 'running' THEN 2 ELSE 1 END, $10::timestamptz,
         ('[["task.created",' || c.id || ',' || to_json(c.queue) || ',' || $12::text || ']'
           || CASE WHEN c.state = 'running'
                   THEN ',["task.started",' || c.id || ',' || to_json(c.queue) || ',{"attempt":1,"node":' || to_json($11::text) || '}]'
                   ELSE '' END
           || ']')::json
  FROM inserted c
)
SELECT json_agg(json_build_array(id, key, state)) AS rows FROM inserted;

-- name: taskGetActiveByKeys
-- The active tasks holding any of the keys $1: what a conflicting insert returns instead of a new task.
SELECT {{task_columns}}
-- The state list is ACTIVE_STATES of core/states.ts, spelled out: SQL cannot import it.
FROM {{schema}}.tasks WHERE key = ANY($1::text[]) AND state IN ('scheduled', 'queued', 'running');

-- name: taskGet
SELECT {{task_columns}}
FROM {{schema}}.tasks WHERE id = $1::bigint;

-- name: taskIdRange
-- The lowest and highest task ids: two reads of the primary key's ends.
SELECT (SELECT min(id) FROM {{schema}}.tasks) AS min, (SELECT max(id) FROM {{schema}}.tasks) AS max;

-- name: taskCreatedFrom
-- The first task with an id of $1 or more, and when it was created: a step of the search that turns a time into
-- an id (runtime/task-listing.ts).
SELECT id, created_at FROM {{schema}}.tasks WHERE id >= $1::bigint ORDER BY id LIMIT 1;

-- name: taskClaim
-- Claims up to $4 queued tasks of queue $1 whose type is in $2 for node $3 at $5, best priority first, then FIFO.
-- The CTE reads the tasks_claim index in order and locks what it takes, skipping rows another claimer holds
-- (SKIP LOCKED), so concurrent claimers never wait for each other nor take a task twice; the UPDATE then finds
-- those rows by id.
-- The claim commits without waiting for its WAL flush (SET LOCAL synchronous_commit = off, as set_config in the
-- CTE every claimed row reads): a claim lost in a server crash puts its tasks back to queued, to run again as
-- after a node crash (execution is at least once already), and any later synchronous commit (a completion, the
-- sequencer numbering the claim's events before a reader can see them) flushes it first. docs/durability.md.
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id, set_config('synchronous_commit', 'off', true) AS async_commit
),
picked AS MATERIALIZED (
  SELECT id FROM {{schema}}.tasks
  WHERE state = 'queued' AND queue = $1::text AND type = ANY($2::text[])
    AND NOT EXISTS (SELECT 1 FROM {{schema}}.queues q WHERE q.name = $1::text AND q.paused)
  ORDER BY priority DESC, id
  LIMIT $4::integer
  FOR UPDATE SKIP LOCKED
),
claimed AS (
  UPDATE {{schema}}.tasks t
  SET state = 'running', attempt = t.attempt + 1, node = $3::text, started_at = $5::timestamptz, progress = NULL,
      event_refs = t.event_refs || (SELECT id FROM ref)
  WHERE t.id = ANY (ARRAY(SELECT id FROM picked))
  -- Only the columns a claim does not set itself, times as epoch ms (the driver's claimedToTask): parsing 50
  -- full rows with their dates cost the node more than the statement cost the server.
  RETURNING t.id, t.queue, t.type, t.data, t.priority, t.attempt, t.max_attempts, t.stalls,
            (date_part('epoch', t.run_at) * 1000)::bigint AS run_at_ms, t.key, t.error, t.errors, t.timeout_ms,
            t.backoff_ms, (date_part('epoch', t.created_at) * 1000)::bigint AS created_at_ms
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT c.queue, d.state, pg_backend_pid() % 16, d.delta * c.n
  FROM (SELECT queue, count(*) AS n FROM claimed GROUP BY queue) c, (VALUES ('queued', -1), ('running', 1)) AS d(state, delta)
  ORDER BY c.queue, d.state
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
logged AS (
  SELECT count(*) AS n,
         '[' || string_agg('["task.started",' || c.id || ',' || to_json(c.queue) || ',{"attempt":' || c.attempt
                           || ',"node":' || to_json($3::text) || '}]', ',' ORDER BY c.priority DESC, c.id) || ']' AS events
  FROM claimed c
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), n, $5::timestamptz, events::json FROM logged WHERE n > 0
)
-- Rows, and an event entry per task: the server bounds a drain, and one JSON value out or grouped events cost it
-- more than they saved the node (1.03–1.14 against 0.82 ms for a claim of 50, EXPLAIN ANALYZE).
SELECT * FROM claimed ORDER BY priority DESC, id;

-- name: taskComplete
-- Completes a batch of running attempts: $1 is a JSON array of [id, attempt, queue, result], at $2. A stale
-- attempt, or a queue that is not the task's, matches no row. $3 is true when every entry has the same queue and
-- attempt (the driver knows): their task.completed events are then alike and go in one entry with a list of ids.
-- Returns the completed ids in input order, as one JSON array.
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id
),
input AS MATERIALIZED (
  SELECT (r ->> 0)::bigint AS id, (r ->> 1)::integer AS attempt, r ->> 2 AS queue, r -> 3 AS result, n
  FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(r, n)
),
completed AS (
  UPDATE {{schema}}.tasks t
  SET state = 'completed', result = i.result, finished_at = $2::timestamptz, event_refs = t.event_refs || (SELECT id FROM ref)
  FROM input i
  WHERE t.id = ANY (ARRAY(SELECT id FROM input)) AND t.id = i.id AND t.attempt = i.attempt AND t.state = 'running'
    AND t.queue = i.queue
  RETURNING t.id, t.queue, t.attempt, i.n
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT c.queue, d.state, pg_backend_pid() % 16, d.delta * c.n
  FROM (SELECT queue, count(*) AS n FROM completed GROUP BY queue) c, (VALUES ('running', -1), ('completed', 1)) AS d(state, delta)
  ORDER BY c.queue, d.state
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
logged AS (
  SELECT count(*) AS n,
         CASE WHEN $3::boolean THEN
           '[["task.completed",[' || string_agg(c.id::text, ',' ORDER BY c.n) FILTER (WHERE $3::boolean) || '],'
             || to_json(min(c.queue)) || ',{"attempt":' || min(c.attempt) || '}]]'
         ELSE
           '[' || string_agg('["task.completed",' || c.id || ',' || to_json(c.queue) || ',{"attempt":' || c.attempt || '}]',
                             ',' ORDER BY c.n) FILTER (WHERE NOT $3::boolean) || ']'
         END AS events
  FROM completed c
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), n, $2::timestamptz, events::json FROM logged WHERE n > 0
)
SELECT json_agg(id ORDER BY n) AS ids FROM completed;

-- name: taskFail
-- Fails running attempt $2 of task $1 with error $3 (history bounded to $4 entries) at $6: back to scheduled at $5
-- for a retry ($7: $5 as ISO text), or failed for good when $5 is null.
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id
),
failed AS (
  UPDATE {{schema}}.tasks t
  SET state = CASE WHEN $5::timestamptz IS NULL THEN 'failed' ELSE 'scheduled' END,
      run_at = coalesce($5::timestamptz, t.run_at), error = $3::jsonb,
      errors = {{schema}}.append_error(t.errors, $3::jsonb, $4::integer),
      finished_at = CASE WHEN $5::timestamptz IS NULL THEN $6::timestamptz END,
      event_refs = t.event_refs || (SELECT id FROM ref)
  WHERE t.id = $1::bigint AND t.attempt = $2::integer AND t.state = 'running'
  RETURNING {{t.task_columns}}
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT c.queue, d.state, pg_backend_pid() % 16, d.delta
  FROM failed c, LATERAL (VALUES ('running', -1), (c.state, 1)) AS d(state, delta)
  ORDER BY c.queue, d.state
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
logged AS (
  SELECT count(*) AS n,
         json_agg(CASE WHEN $5::timestamptz IS NULL
                       THEN json_build_array('task.failed', c.id, c.queue,
                                             json_build_object('attempt', c.attempt, 'error', c.error ->> 'message'))
                       ELSE json_build_array('task.retrying', c.id, c.queue,
                                             json_build_object('attempt', c.attempt, 'error', c.error ->> 'message', 'runAt', $7::text))
                  END) AS events
  FROM failed c
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), n, $6::timestamptz, events FROM logged WHERE n > 0
)
SELECT * FROM failed;

-- name: taskCancel
-- Cancels task $1 if active, for reason $2 at $3 ($4: $3 as ISO text; history bounded to $5). Returns the row before ('before') and, when it was active, after ('after').
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id
),
found AS (
  SELECT {{task_columns}}
  FROM {{schema}}.tasks WHERE id = $1::bigint FOR UPDATE
),
cancelled AS (
  UPDATE {{schema}}.tasks t
  SET (state, finished_at, error, errors) = (
    SELECT 'cancelled', $3::timestamptz, r.rec, {{schema}}.append_error(t.errors, r.rec, $5::integer)
    FROM (SELECT jsonb_build_object('name', 'CancelledError', 'message', $2::text, 'attempt', t.attempt, 'at', $4::text) AS rec) r
  ), event_refs = t.event_refs || (SELECT id FROM ref)
-- The state list is ACTIVE_STATES of core/states.ts, spelled out: SQL cannot import it.
  WHERE t.id = $1::bigint AND (SELECT state FROM found) IN ('scheduled', 'queued', 'running')
  RETURNING {{t.task_columns}}
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT c.queue, d.state, pg_backend_pid() % 16, sum(d.delta)
  FROM cancelled c JOIN found f ON f.id = c.id, LATERAL (VALUES (f.state, -1), ('cancelled', 1)) AS d(state, delta)
  GROUP BY c.queue, d.state ORDER BY c.queue, d.state
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
logged AS (
  SELECT count(*) AS n,
         json_agg(json_build_array('task.cancelled', c.id, c.queue, json_build_object('previousState', f.state, 'reason', $2::text))) AS events
  FROM cancelled c JOIN found f ON f.id = c.id
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), n, $3::timestamptz, events FROM logged WHERE n > 0
)
SELECT 'after' AS version, * FROM cancelled
UNION ALL
SELECT 'before' AS version, * FROM found;

-- name: taskRerun
-- Runs failed or cancelled task $1 again from attempt 0 at $2. Returns the row before ('before') and, when it was rerun, after ('after'); a key now held by another active task raises a unique violation.
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id
),
found AS (
  SELECT {{task_columns}}
  FROM {{schema}}.tasks WHERE id = $1::bigint FOR UPDATE
),
rerun AS (
  UPDATE {{schema}}.tasks t
  SET state = 'queued', attempt = 0, stalls = 0, run_at = $2::timestamptz, node = NULL, progress = NULL, result = NULL,
      started_at = NULL, finished_at = NULL, event_refs = t.event_refs || (SELECT id FROM ref)
-- The state list is TRANSITIONS.rerun.from of core/states.ts, spelled out: SQL cannot import it.
  WHERE t.id = $1::bigint AND (SELECT state FROM found) IN ('failed', 'cancelled')
  RETURNING {{t.task_columns}}
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT c.queue, d.state, pg_backend_pid() % 16, sum(d.delta)
  FROM rerun c JOIN found f ON f.id = c.id, LATERAL (VALUES (f.state, -1), ('queued', 1)) AS d(state, delta)
  GROUP BY c.queue, d.state ORDER BY c.queue, d.state
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
logged AS (
  SELECT count(*) AS n,
         json_agg(json_build_array('task.rerun', c.id, c.queue, json_build_object('previousState', f.state))) AS events
  FROM rerun c JOIN found f ON f.id = c.id
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), n, $2::timestamptz, events FROM logged WHERE n > 0
)
SELECT 'after' AS version, * FROM rerun
UNION ALL
SELECT 'before' AS version, * FROM found;

-- name: taskProgress
-- Records progress $3 of running attempt $2 of task $1 at $4; a stale attempt matches no row. The event goes to the log but not to the task's event_refs (a long task reports thousands); the log row takes its id from the column default.
-- Committed without waiting for the WAL flush (set_config in the row's filter): progress lost in a server crash
-- is only an older figure, overwritten by the next report.
WITH updated AS (
  UPDATE {{schema}}.tasks SET progress = $3::jsonb
  WHERE id = $1::bigint AND attempt = $2::integer AND state = 'running'
    AND set_config('synchronous_commit', 'off', true) = 'off'
  RETURNING id, queue, attempt
),
logged AS (
  SELECT count(*) AS n,
         json_agg(json_build_array('task.progress', c.id, c.queue, jsonb_build_object('attempt', c.attempt) || $3::jsonb)) AS events
  FROM updated c
),
appended AS (
  INSERT INTO {{schema}}.event_log (count, at, events)
  SELECT n, $4::timestamptz, events FROM logged WHERE n > 0
)
SELECT id FROM updated;

-- name: taskPromote
-- Moves up to $2 scheduled tasks due at $1 to queued, earliest first (tasks_scheduled index); a concurrent promoter skips what this one holds.
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id
),
due AS MATERIALIZED (
  SELECT id FROM {{schema}}.tasks
  WHERE state = 'scheduled' AND run_at <= $1::timestamptz
  ORDER BY run_at
  LIMIT $2::integer
  FOR UPDATE SKIP LOCKED
),
promoted AS (
  UPDATE {{schema}}.tasks t SET state = 'queued', event_refs = t.event_refs || (SELECT id FROM ref)
  WHERE t.id = ANY (ARRAY(SELECT id FROM due))
  RETURNING t.id, t.queue, t.run_at
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT c.queue, d.state, pg_backend_pid() % 16, sum(d.delta)
  FROM promoted c, (VALUES ('scheduled', -1), ('queued', 1)) AS d(state, delta)
  GROUP BY c.queue, d.state ORDER BY c.queue, d.state
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
logged AS (
  SELECT count(*) AS n, json_agg(json_build_array('task.promoted', c.id, c.queue, NULL) ORDER BY c.run_at, c.id) AS events
  FROM promoted c
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), n, $1::timestamptz, events FROM logged WHERE n > 0
)
SELECT id, queue FROM promoted;

-- name: taskNextRunAt
-- The earliest run_at of a scheduled task (no row when there is none), read from the front of tasks_scheduled:
-- min(run_at) may be planned as a scan of all of them.
SELECT run_at FROM {{schema}}.tasks WHERE state = 'scheduled' ORDER BY run_at LIMIT 1;

-- name: taskStates
SELECT id, state, attempt, type FROM {{schema}}.tasks WHERE id = ANY($1::bigint[]);

-- name: taskRescue
-- Puts running tasks of nodes silent since $2 (or without a node row), never rescuer $1's own, back to queued at $4 counting a stall, or fails them past $3 stalls or out of attempts ($5: $4 as ISO text; history bounded to $6).
-- With $7 (ids) not null: rescuer $1's own running tasks among $7 instead, which it stopped when it fenced itself.
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id
),
stalled AS MATERIALIZED (
  SELECT t.id FROM {{schema}}.tasks t
  WHERE $7::bigint[] IS NULL AND t.state = 'running' AND t.node <> $1::text
    AND NOT EXISTS (SELECT 1 FROM {{schema}}.nodes n WHERE n.id = t.node AND n.heartbeat_at >= $2::timestamptz)
  FOR UPDATE OF t SKIP LOCKED
),
abandoned AS MATERIALIZED (
  SELECT t.id FROM {{schema}}.tasks t
  WHERE t.id = ANY ($7::bigint[]) AND t.state = 'running' AND t.node = $1::text
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
  ), event_refs = t.event_refs || (SELECT id FROM ref)
  WHERE t.id = ANY (ARRAY(SELECT id FROM stalled UNION ALL SELECT id FROM abandoned))
  RETURNING {{t.task_columns}}
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT c.queue, d.state, pg_backend_pid() % 16, sum(d.delta)
  FROM rescued c, LATERAL (VALUES ('running', -1), (c.state, 1)) AS d(state, delta)
  GROUP BY c.queue, d.state ORDER BY c.queue, d.state
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
logged AS (
  SELECT count(*) AS n,
         json_agg(json_build_array(CASE WHEN c.state = 'failed' THEN 'task.failed' ELSE 'task.rescued' END, c.id, c.queue,
                                   json_build_object('attempt', c.attempt, 'node', c.node, 'stalls', c.stalls,
                                                     'error', c.error ->> 'message'))
                  ORDER BY c.id) AS events
  FROM rescued c
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), n, $4::timestamptz, events FROM logged WHERE n > 0
)
SELECT * FROM rescued ORDER BY id;

-- name: taskRelease
-- Hands node $1's running tasks (all, or those in $2 when it is not null) back to the queue at $3. The attempt number stays (it fences off the interrupted run) and the budget grows by one, so the run is not held against the task.
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id
),
released AS (
  UPDATE {{schema}}.tasks
  SET state = 'queued', run_at = $3::timestamptz, progress = NULL, max_attempts = max_attempts + 1,
      event_refs = event_refs || (SELECT id FROM ref)
  WHERE state = 'running' AND node = $1::text AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))
  RETURNING id, queue, attempt
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT c.queue, d.state, pg_backend_pid() % 16, sum(d.delta)
  FROM released c, (VALUES ('running', -1), ('queued', 1)) AS d(state, delta)
  GROUP BY c.queue, d.state ORDER BY c.queue, d.state
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
logged AS (
  SELECT count(*) AS n,
         json_agg(json_build_array('task.rescued', c.id, c.queue, json_build_object('attempt', c.attempt, 'node', $1::text, 'released', true))
                  ORDER BY c.id) AS events
  FROM released c
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), n, $3::timestamptz, events FROM logged WHERE n > 0
)
SELECT id FROM released ORDER BY id;

-- name: taskPrune
-- One step of the pruner's walk over tasks in id order (PostgresStore.taskPrune): looks at the $3 tasks after id $2, up to the first one created at or after $1, and deletes the first $4 of them that finished before $1 (skipping any another transaction holds). Returns how many it deleted, and `next`, the id to walk on from (null: the walk is over).
WITH seen AS (
  SELECT id, created_at FROM {{schema}}.tasks WHERE id > $2::bigint ORDER BY id LIMIT $3::integer
),
edge AS (
  -- Ids grow with created_at, and a task finishes after it is created: nothing from the first task created at or
  -- after $1 on can qualify.
  SELECT min(id) FILTER (WHERE created_at >= $1::timestamptz) AS young, max(id) AS last, count(*) AS n FROM seen
),
doomed AS MATERIALIZED (
  SELECT t.id FROM {{schema}}.tasks t
  WHERE t.id > $2::bigint AND t.id < (SELECT coalesce(young, last + 1) FROM edge)
-- The state list is FINAL_STATES of core/states.ts, spelled out: SQL cannot import it.
    AND t.state IN ('completed', 'failed', 'cancelled') AND t.finished_at < $1::timestamptz
  ORDER BY t.id
  LIMIT $4::integer
  FOR UPDATE OF t SKIP LOCKED
),
deleted AS (
  DELETE FROM {{schema}}.tasks t WHERE t.id = ANY (ARRAY(SELECT id FROM doomed))
  RETURNING t.queue, t.state
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT queue, state, pg_backend_pid() % 16, -count(*) FROM deleted GROUP BY queue, state ORDER BY queue, state
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
)
SELECT (SELECT count(*) FROM deleted) AS deleted,
       CASE WHEN (SELECT count(*) FROM doomed) = $4::integer THEN (SELECT max(id) FROM doomed)
            WHEN edge.young IS NULL AND edge.n = $3::integer THEN edge.last
       END AS next
FROM edge;

-- name: taskDelete
-- Deletes the finished tasks among $1 (a person's action; the pruner has its own walk) at $2, with a task.deleted
-- event each. Returns the deleted ids. The state list is FINAL_STATES of core/states.ts, spelled out.
WITH ref AS MATERIALIZED (
  SELECT nextval('{{schema}}.event_log_ids') AS id
),
deleted AS (
  DELETE FROM {{schema}}.tasks t
  WHERE t.id = ANY ($1::bigint[]) AND t.state IN ('completed', 'failed', 'cancelled')
  RETURNING t.id, t.queue, t.state
),
counted AS (
  INSERT INTO {{schema}}.queue_counts AS qc (queue, state, shard, count)
  SELECT queue, state, pg_backend_pid() % 16, -count(*) FROM deleted GROUP BY queue, state ORDER BY queue, state
  ON CONFLICT (queue, state, shard) DO UPDATE SET count = qc.count + excluded.count
),
logged AS (
  SELECT count(*) AS n,
         json_agg(json_build_array('task.deleted', c.id, c.queue, json_build_object('state', c.state)) ORDER BY c.id) AS events
  FROM deleted c
),
appended AS (
  INSERT INTO {{schema}}.event_log (id, count, at, events)
  SELECT (SELECT id FROM ref), n, $2::timestamptz, events FROM logged WHERE n > 0
)
SELECT id FROM deleted ORDER BY id;
