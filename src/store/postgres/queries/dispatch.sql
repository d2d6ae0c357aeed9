-- PostgreSQL statements of dispatch (DispatchStore, src/store/dispatch-store.ts): topics, publishers, messages,
-- deliveries and their attempts. Positional parameters, cast where they are declared. Statements that change state
-- append their events to the event log themselves (a CTE, like the task statements), on topic_channel(name); the
-- events' shapes are those of src/store/dispatch-events.ts. The searches, whose filters vary, are built in
-- postgres/dispatch.ts (through ../dispatch-search.ts).

-- name: topicInsert
-- Inserts topic ($1 name, $2 origin_host, $3 recovery_enabled) at $4; no row when the name is taken.
WITH created AS (
  INSERT INTO {{schema}}.topics (name, origin_host, recovery_enabled, created_at, updated_at)
  VALUES ($1::text, $2::text, $3::boolean, $4::timestamptz, $4::timestamptz)
  ON CONFLICT (name) DO NOTHING
  RETURNING *
),
logged AS (
  INSERT INTO {{schema}}.event_log (count, at, events)
  SELECT 1, $4::timestamptz, json_build_array(json_build_array('topic.changed', 0, {{schema}}.topic_channel(c.name),
    json_build_object('topic', c.name, 'id', c.id, 'change', 'created', 'recoveryEnabled', c.recovery_enabled)))
  FROM created c
)
SELECT * FROM created;

-- name: topicById
SELECT * FROM {{schema}}.topics WHERE id = $1::bigint;

-- name: topicByName
SELECT * FROM {{schema}}.topics WHERE name = $1::text;

-- name: topicList
SELECT * FROM {{schema}}.topics ORDER BY id;

-- name: topicWrite
-- Writes topic $1's changeable columns ($2 origin_host, $3 recovery_enabled) at $4.
WITH updated AS (
  UPDATE {{schema}}.topics SET origin_host = $2::text, recovery_enabled = $3::boolean, updated_at = $4::timestamptz
  WHERE id = $1::bigint
  RETURNING *
),
logged AS (
  INSERT INTO {{schema}}.event_log (count, at, events)
  SELECT 1, $4::timestamptz, json_build_array(json_build_array('topic.changed', 0, {{schema}}.topic_channel(u.name),
    json_build_object('topic', u.name, 'id', u.id, 'change', 'updated', 'recoveryEnabled', u.recovery_enabled)))
  FROM updated u
)
SELECT * FROM updated;

-- name: topicRecoveryHosts
SELECT DISTINCT origin_host FROM {{schema}}.topics WHERE recovery_enabled ORDER BY origin_host;

-- name: publisherInsert
-- Inserts a publisher: $1 topic_id, $2 target, $3 type, $4 active, $5 seconds_timeout, $6 seconds_retry,
-- $7 retry_mode, $8 max_attempts, $9 chunk_size, $10 concurrency, $11 secrets, at $12. No row when the topic has an
-- undeleted publisher with this target and type.
INSERT INTO {{schema}}.publishers (topic_id, target, type, active, seconds_timeout, seconds_retry, retry_mode,
  max_attempts, chunk_size, concurrency, secrets, created_at, updated_at)
VALUES ($1::bigint, $2::text, $3::text, $4::boolean, $5::integer, $6::integer, $7::text, $8::integer, $9::integer,
  $10::integer, $11::jsonb, $12::timestamptz, $12::timestamptz)
ON CONFLICT (topic_id, target, type) WHERE NOT deleted DO NOTHING
RETURNING id;

-- name: publisherById
SELECT p.*, t.name AS topic_name FROM {{schema}}.publishers p JOIN {{schema}}.topics t ON t.id = p.topic_id
WHERE p.id = $1::bigint;

-- name: publisherLockById
SELECT p.*, t.name AS topic_name FROM {{schema}}.publishers p JOIN {{schema}}.topics t ON t.id = p.topic_id
WHERE p.id = $1::bigint
FOR UPDATE OF p;

-- name: publisherList
-- Publishers of topic $1 (null: every topic), deleted ones too when $2.
SELECT p.*, t.name AS topic_name FROM {{schema}}.publishers p JOIN {{schema}}.topics t ON t.id = p.topic_id
WHERE ($1::bigint IS NULL OR p.topic_id = $1::bigint) AND ($2::boolean OR NOT p.deleted)
ORDER BY p.id;

-- name: publisherWrite
-- Writes publisher $1's changeable columns: $2 target, $3 active, $4 seconds_timeout, $5 seconds_retry,
-- $6 retry_mode, $7 max_attempts, $8 chunk_size, $9 concurrency, $10 secrets, $11 disabled_reason, at $12.
UPDATE {{schema}}.publishers SET target = $2::text, active = $3::boolean, seconds_timeout = $4::integer,
  seconds_retry = $5::integer, retry_mode = $6::text, max_attempts = $7::integer, chunk_size = $8::integer,
  concurrency = $9::integer, secrets = $10::jsonb, disabled_reason = $11::text, updated_at = $12::timestamptz
WHERE id = $1::bigint;

-- name: publisherMarkDeleted
UPDATE {{schema}}.publishers SET deleted = true, updated_at = $2::timestamptz WHERE id = $1::bigint;

-- name: deliveriesRelease
-- Publisher $1 was enabled at $2: its held deliveries are due now (the retry timer gives them tasks).
UPDATE {{schema}}.deliveries SET state = 'scheduled', generation = generation + 1, next_attempt_at = $2::timestamptz,
  updated_at = $2::timestamptz
WHERE publisher_id = $1::bigint AND state = 'held' AND state <> 'delivered'
RETURNING id;

-- name: deliveriesDiscard
-- Publisher $1 was deleted at $2: its deliveries waiting without a task are discarded.
UPDATE {{schema}}.deliveries SET state = 'discarded', generation = generation + 1, next_attempt_at = NULL,
  updated_at = $2::timestamptz, finished_at = $2::timestamptz
WHERE publisher_id = $1::bigint AND state IN ('scheduled', 'held') AND state <> 'delivered'
RETURNING id;

-- name: messageInsert
-- Inserts messages into topic $1 at $3, due at $4: $2 is a JSON array of [payload, attributes, idempotency key].
-- A key that exists inserts nothing (the driver looks its message up). Each message gets its attributes indexed
-- and one delivery per undeleted publisher: held when the publisher is disabled, else pending when $4 has come, else
-- scheduled for $4. Ids are drawn in input order. Returns the new messages [id, key] and deliveries
-- [id, message_id, publisher_id, state], by id.
WITH input AS (
  SELECT ord, value -> 0 AS payload, value -> 1 AS attributes, value ->> 2 AS key
  FROM json_array_elements($2::json) WITH ORDINALITY AS i(value, ord)
),
inserted AS (
  INSERT INTO {{schema}}.messages (topic_id, payload, attributes, idempotency_key, received_at)
  SELECT $1::bigint, payload, attributes, key, $3::timestamptz FROM input ORDER BY ord
  ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING id, idempotency_key, attributes
),
attributed AS (
  INSERT INTO {{schema}}.message_attributes (key, value, received_at, message_id)
  SELECT a.key, CASE WHEN json_typeof(a.value) = 'string' THEN a.value #>> '{}' ELSE a.value::text END,
    $3::timestamptz, i.id
  FROM inserted i, json_each(i.attributes) a
  ON CONFLICT DO NOTHING
),
publishers AS (
  SELECT id, active FROM {{schema}}.publishers WHERE topic_id = $1::bigint AND NOT deleted
),
created AS (
  INSERT INTO {{schema}}.deliveries (message_id, publisher_id, state, next_attempt_at, received_at, created_at,
    updated_at)
  SELECT i.id, p.id,
    CASE WHEN NOT p.active THEN 'held' WHEN $4::timestamptz <= $3::timestamptz THEN 'pending' ELSE 'scheduled' END,
    CASE WHEN p.active AND $4::timestamptz > $3::timestamptz THEN $4::timestamptz END,
    $3::timestamptz, $3::timestamptz, $3::timestamptz
  FROM inserted i CROSS JOIN publishers p
  ORDER BY i.id, p.id
  RETURNING id, message_id, publisher_id, state
),
logged AS (
  INSERT INTO {{schema}}.event_log (count, at, events)
  SELECT 1, $3::timestamptz, json_build_array(json_build_array('dispatch.received', 0, {{schema}}.topic_channel(t.name),
    json_build_object('topic', t.name,
      'messages', (SELECT json_agg(id ORDER BY id) FROM inserted),
      'deliveries', (SELECT count(*) FROM created),
      'pending', (SELECT count(*) FROM created WHERE state = 'pending'),
      'scheduled', (SELECT count(*) FROM created WHERE state = 'scheduled'),
      'held', (SELECT count(*) FROM created WHERE state = 'held'))))
  FROM {{schema}}.topics t WHERE t.id = $1::bigint AND EXISTS (SELECT 1 FROM inserted)
)
SELECT (SELECT coalesce(json_agg(json_build_array(id, idempotency_key) ORDER BY id), '[]') FROM inserted) AS messages,
  (SELECT coalesce(json_agg(json_build_array(id, message_id, publisher_id, state) ORDER BY id), '[]') FROM created)
    AS deliveries;

-- name: messagesByKeys
-- The messages holding the idempotency keys $1, with their deliveries [id, publisher_id, state].
SELECT m.id, m.idempotency_key, m.received_at,
  (SELECT coalesce(json_agg(json_build_array(d.id, d.publisher_id, d.state) ORDER BY d.id), '[]')
   FROM {{schema}}.deliveries d WHERE d.message_id = m.id) AS deliveries
FROM {{schema}}.messages m WHERE m.idempotency_key = ANY($1::text[]);

-- name: messageById
SELECT m.*, t.name AS topic_name FROM {{schema}}.messages m JOIN {{schema}}.topics t ON t.id = m.topic_id
WHERE m.id = $1::bigint;

-- name: deliveriesOfMessage
SELECT * FROM {{schema}}.deliveries WHERE message_id = $1::bigint ORDER BY id;

-- name: deliveryById
SELECT * FROM {{schema}}.deliveries WHERE id = $1::bigint;

-- name: deliveryRecordMany
-- Records attempts at $2, one per element of $1, a JSON array of [delivery id, generation, state, step (1 when the
-- attempt moves the delivery along its retry schedule), next attempt at, status, error, task id, attempt made at,
-- duration ms, outcome, response body, request, reason to disable the publisher (or null), next attempt at as ISO
-- text]: each pending delivery of that generation moves to its state (a stale one is left alone), its attempt is
-- kept, and its publisher's row is written once, only when it changes: failing_since cleared by a success in the
-- batch or set by a failure, and disabled when asked (a row may be written once per statement: one UPDATE of
-- publishers, whatever the batch says of it). One log row holds every attempt's event, and each disable's.
WITH input AS (
  SELECT ord, (r ->> 0)::bigint AS id, (r ->> 1)::integer AS generation, r ->> 2 AS state, (r ->> 3)::integer AS step,
    (r ->> 4)::timestamptz AS next_at, (r ->> 5)::integer AS status, r ->> 6 AS error, (r ->> 7)::bigint AS task_id,
    (r ->> 8)::timestamptz AS at, (r ->> 9)::integer AS duration_ms, r ->> 10 AS outcome, r ->> 11 AS response_body,
    r -> 12 AS request, r ->> 13 AS disable, r ->> 14 AS next_iso
  FROM json_array_elements($1::json) WITH ORDINALITY AS x(r, ord)
),
moved AS (
  UPDATE {{schema}}.deliveries d SET state = i.state, generation = d.generation + 1, attempts = d.attempts + 1,
    step = d.step + i.step, next_attempt_at = i.next_at, last_status = i.status, last_error = i.error,
    updated_at = $2::timestamptz,
    finished_at = CASE WHEN i.state IN ('delivered', 'failed') THEN $2::timestamptz END
  FROM input i
  WHERE d.id = i.id AND d.generation = i.generation AND d.state = 'pending'
  RETURNING d.*, i.ord, i.task_id AS in_task, i.at AS in_at, i.duration_ms AS in_duration, i.outcome AS in_outcome,
    i.response_body AS in_body, i.request AS in_request, i.disable AS in_disable, i.next_iso AS in_next_iso
),
attempted AS (
  INSERT INTO {{schema}}.delivery_attempts (delivery_id, attempt, task_id, at, duration_ms, status, outcome, error,
    response_body, request, next_attempt_at)
  SELECT id, attempts, in_task, in_at, in_duration, last_status, in_outcome, last_error, in_body, in_request::jsonb,
    next_attempt_at
  FROM moved
),
changes AS (
  SELECT publisher_id AS id, bool_or(in_outcome = 'delivered') AS succeeded,
    (array_agg(in_disable ORDER BY ord) FILTER (WHERE in_disable IS NOT NULL))[1] AS disable
  FROM moved GROUP BY publisher_id
),
before AS (
  SELECT p.id, p.active, p.failing_since FROM {{schema}}.publishers p WHERE p.id IN (SELECT id FROM changes)
),
touched AS (
  UPDATE {{schema}}.publishers p SET
    failing_since = CASE WHEN c.succeeded THEN NULL ELSE coalesce(p.failing_since, $2::timestamptz) END,
    active = CASE WHEN c.disable IS NOT NULL THEN false ELSE p.active END,
    disabled_reason = CASE WHEN c.disable IS NOT NULL AND p.active THEN c.disable ELSE p.disabled_reason END,
    updated_at = CASE WHEN c.disable IS NOT NULL AND p.active THEN $2::timestamptz ELSE p.updated_at END
  FROM changes c
  WHERE p.id = c.id AND ((c.succeeded AND p.failing_since IS NOT NULL)
    OR (NOT c.succeeded AND p.failing_since IS NULL) OR (c.disable IS NOT NULL AND p.active))
),
disabled AS (
  SELECT c.id, c.disable, p.deleted, t.name AS topic
  FROM changes c JOIN before b ON b.id = c.id JOIN {{schema}}.publishers p ON p.id = c.id
  JOIN {{schema}}.topics t ON t.id = p.topic_id
  WHERE c.disable IS NOT NULL AND b.active
),
named AS (
  SELECT d.*, t.name AS topic FROM moved d
  CROSS JOIN LATERAL (SELECT topic_id FROM {{schema}}.messages WHERE id = d.message_id OFFSET 0) m
  JOIN {{schema}}.topics t ON t.id = m.topic_id
),
logged AS (
  INSERT INTO {{schema}}.event_log (count, at, events)
  SELECT (SELECT count(*) FROM named) + (SELECT count(*) FROM disabled), $2::timestamptz,
    (coalesce((SELECT jsonb_agg(jsonb_build_array('delivery.attempted', 0, {{schema}}.topic_channel(n.topic),
        jsonb_build_object('topic', n.topic, 'delivery', n.id, 'message', n.message_id, 'publisher', n.publisher_id,
          'attempt', n.attempts, 'status', n.last_status, 'durationMs', n.in_duration, 'outcome', n.in_outcome,
          'state', n.state, 'nextAttemptAt', n.in_next_iso, 'error', n.last_error)) ORDER BY n.ord) FROM named n),
      '[]'::jsonb)
    || coalesce((SELECT jsonb_agg(jsonb_build_array('publisher.changed', 0, {{schema}}.topic_channel(x.topic),
        jsonb_build_object('topic', x.topic, 'publisher', x.id, 'change', 'disabled', 'active', false,
          'deleted', x.deleted, 'reason', x.disable)) ORDER BY x.id) FROM disabled x), '[]'::jsonb))::json
  WHERE EXISTS (SELECT 1 FROM moved)
)
SELECT * FROM moved ORDER BY ord;

-- name: deliveryWorkMany
-- Like deliveryWork, for the deliveries $1 (ids): what a batch of delivery tasks reads in one round trip.
SELECT d.id AS d_id, d.message_id AS d_message_id, d.publisher_id AS d_publisher_id, d.state AS d_state,
  d.generation AS d_generation, d.attempts AS d_attempts, d.step AS d_step, d.next_attempt_at AS d_next_attempt_at,
  d.last_status AS d_last_status, d.last_error AS d_last_error, d.received_at AS d_received_at,
  d.created_at AS d_created_at, d.updated_at AS d_updated_at, d.finished_at AS d_finished_at,
  m.id AS m_id, m.topic_id AS m_topic_id, m.payload AS m_payload, m.attributes AS m_attributes,
  m.idempotency_key AS m_idempotency_key, m.received_at AS m_received_at,
  p.id AS p_id, p.topic_id AS p_topic_id, p.target AS p_target, p.type AS p_type, p.active AS p_active,
  p.deleted AS p_deleted, p.seconds_timeout AS p_seconds_timeout, p.seconds_retry AS p_seconds_retry,
  p.retry_mode AS p_retry_mode, p.max_attempts AS p_max_attempts, p.chunk_size AS p_chunk_size,
  p.concurrency AS p_concurrency, p.secrets AS p_secrets, p.disabled_reason AS p_disabled_reason,
  p.failing_since AS p_failing_since, p.created_at AS p_created_at, p.updated_at AS p_updated_at,
  t.name AS t_name
FROM {{schema}}.deliveries d
CROSS JOIN LATERAL (SELECT * FROM {{schema}}.messages WHERE id = d.message_id OFFSET 0) m
JOIN {{schema}}.publishers p ON p.id = d.publisher_id
JOIN {{schema}}.topics t ON t.id = m.topic_id
WHERE d.id = ANY($1::bigint[]);

-- name: deliverySettle
-- Moves pending delivery $1 of generation $2 to $3 without an attempt at $5, due at $4; reason $6 for the event.
WITH settled AS (
  UPDATE {{schema}}.deliveries SET state = $3::text, generation = generation + 1, next_attempt_at = $4::timestamptz,
    updated_at = $5::timestamptz, finished_at = CASE WHEN $3::text = 'discarded' THEN $5::timestamptz END
  WHERE id = $1::bigint AND generation = $2::integer AND state = 'pending'
  RETURNING *
),
logged AS (
  INSERT INTO {{schema}}.event_log (count, at, events)
  SELECT 1, $5::timestamptz, json_build_array(json_build_array('delivery.changed', 0, {{schema}}.topic_channel(t.name),
    json_build_object('topic', t.name, 'deliveries', json_build_array(s.id), 'state', s.state, 'reason', $6::text,
      'publisher', NULL)))
  FROM settled s JOIN {{schema}}.messages m ON m.id = s.message_id JOIN {{schema}}.topics t ON t.id = m.topic_id
)
SELECT * FROM settled;

-- name: deliveryPromoteDue
-- Up to $2 scheduled deliveries due at $1 become pending (their tasks are inserted next, in the same transaction),
-- skipping those another node promotes now. Returns [id, generation] of each.
WITH due AS (
  SELECT id FROM {{schema}}.deliveries
  WHERE state = 'scheduled' AND next_attempt_at <= $1::timestamptz
  ORDER BY next_attempt_at LIMIT $2::integer
  FOR UPDATE SKIP LOCKED
),
promoted AS (
  UPDATE {{schema}}.deliveries d SET state = 'pending', generation = d.generation + 1, next_attempt_at = NULL,
    updated_at = $1::timestamptz
  FROM due WHERE d.id = due.id
  RETURNING d.id, d.generation, d.message_id
),
topics AS (
  SELECT t.name, json_agg(p.id ORDER BY p.id) AS ids
  FROM promoted p JOIN {{schema}}.messages m ON m.id = p.message_id JOIN {{schema}}.topics t ON t.id = m.topic_id
  GROUP BY t.name
),
logged AS (
  INSERT INTO {{schema}}.event_log (count, at, events)
  SELECT count(*), $1::timestamptz, json_agg(json_build_array('delivery.changed', 0, {{schema}}.topic_channel(name),
    json_build_object('topic', name, 'deliveries', ids, 'state', 'pending', 'reason', 'due', 'publisher', NULL)))
  FROM topics HAVING count(*) > 0
)
SELECT id, generation FROM promoted ORDER BY id;

-- name: deliveryNextDueAt
SELECT next_attempt_at AS at FROM {{schema}}.deliveries WHERE state = 'scheduled'
ORDER BY next_attempt_at LIMIT 1;

-- name: deliveryReplay
-- Replays the deliveries $1 (ids), or when $1 is null up to $5 of publisher $2's received in [$3, $4): those
-- failed or cancelled whose publisher is not deleted become scheduled, due at $6, from the start of the schedule
-- (held when the publisher is disabled). Returns [id, state] of each.
WITH chosen AS (
  (SELECT d.id FROM {{schema}}.deliveries d
   WHERE $1::bigint[] IS NULL AND d.publisher_id = $2::bigint AND d.state IN ('failed', 'cancelled')
     AND d.state <> 'delivered' AND d.received_at >= $3::timestamptz AND d.received_at < $4::timestamptz
   ORDER BY d.received_at, d.message_id LIMIT $5::integer)
  UNION ALL
  SELECT id FROM unnest($1::bigint[]) AS i(id)
),
replayed AS (
  UPDATE {{schema}}.deliveries d SET state = CASE WHEN p.active THEN 'scheduled' ELSE 'held' END,
    generation = d.generation + 1, step = 0, next_attempt_at = CASE WHEN p.active THEN $6::timestamptz END,
    updated_at = $6::timestamptz, finished_at = NULL
  FROM chosen c, {{schema}}.publishers p
  WHERE d.id = c.id AND d.state IN ('failed', 'cancelled') AND p.id = d.publisher_id AND NOT p.deleted
  RETURNING d.id, d.state, d.message_id
),
topics AS (
  SELECT t.name, r.state, json_agg(r.id ORDER BY r.id) AS ids
  FROM replayed r JOIN {{schema}}.messages m ON m.id = r.message_id JOIN {{schema}}.topics t ON t.id = m.topic_id
  GROUP BY t.name, r.state
),
logged AS (
  INSERT INTO {{schema}}.event_log (count, at, events)
  SELECT count(*), $6::timestamptz, json_agg(json_build_array('delivery.changed', 0, {{schema}}.topic_channel(name),
    json_build_object('topic', name, 'deliveries', ids, 'state', state, 'reason', 'replayed', 'publisher', NULL)))
  FROM topics HAVING count(*) > 0
)
SELECT id, state FROM replayed ORDER BY id;

-- name: deliveryRetryNow
-- Scheduled delivery $1 is due at $2 when its next attempt is later (a person's "retry now"): no attempt spent, the
-- same step of its schedule, the same generation (a scheduled delivery has no task to make stale).
WITH moved AS (
  UPDATE {{schema}}.deliveries SET next_attempt_at = LEAST(next_attempt_at, $2::timestamptz),
    updated_at = $2::timestamptz
  WHERE id = $1::bigint AND state = 'scheduled'
  RETURNING *
),
logged AS (
  INSERT INTO {{schema}}.event_log (count, at, events)
  SELECT 1, $2::timestamptz, json_build_array(json_build_array('delivery.changed', 0, {{schema}}.topic_channel(t.name),
    json_build_object('topic', t.name, 'deliveries', json_build_array(d.id), 'state', 'scheduled',
      'reason', 'retry now', 'publisher', NULL)))
  FROM moved d JOIN {{schema}}.messages m ON m.id = d.message_id JOIN {{schema}}.topics t ON t.id = m.topic_id
)
SELECT * FROM moved;

-- name: deliveryCounts
-- The deliveries in each state but delivered, $1 at most each: per state, a walk of at most $1 entries of
-- deliveries_state (never the whole table; `state <> 'delivered'` lets the partial index serve a generic plan).
SELECT s.state, (SELECT count(*) FROM (SELECT 1 FROM {{schema}}.deliveries d
    WHERE d.state = s.state AND d.state <> 'delivered' LIMIT $1::integer) x) AS n
FROM unnest(ARRAY['scheduled', 'pending', 'held', 'failed', 'discarded', 'cancelled']) AS s(state);

-- name: deliveryCountsByPublisher
-- Like deliveryCounts, for each publisher of $2 (ids): a walk of at most $1 entries of deliveries_publisher per
-- publisher and state.
SELECT p.id AS publisher_id, s.state, (SELECT count(*) FROM (SELECT 1 FROM {{schema}}.deliveries d
    WHERE d.publisher_id = p.id AND d.state = s.state AND d.state <> 'delivered' LIMIT $1::integer) x) AS n
FROM unnest($2::bigint[]) AS p(id)
CROSS JOIN unnest(ARRAY['scheduled', 'pending', 'held', 'failed', 'discarded', 'cancelled']) AS s(state);

-- name: deliveryCancel
-- Cancels delivery $1 at $2 when it is not finished; returns it as it is after either way.
WITH cancelled AS (
  UPDATE {{schema}}.deliveries SET state = 'cancelled', generation = generation + 1, next_attempt_at = NULL,
    updated_at = $2::timestamptz, finished_at = $2::timestamptz
  WHERE id = $1::bigint AND state IN ('scheduled', 'pending', 'held')
  RETURNING *
),
logged AS (
  INSERT INTO {{schema}}.event_log (count, at, events)
  SELECT 1, $2::timestamptz, json_build_array(json_build_array('delivery.changed', 0, {{schema}}.topic_channel(t.name),
    json_build_object('topic', t.name, 'deliveries', json_build_array(c.id), 'state', 'cancelled',
      'reason', 'cancelled by request', 'publisher', NULL)))
  FROM cancelled c JOIN {{schema}}.messages m ON m.id = c.message_id JOIN {{schema}}.topics t ON t.id = m.topic_id
)
SELECT * FROM cancelled;

-- name: attemptList
SELECT * FROM {{schema}}.delivery_attempts WHERE delivery_id = $1::bigint ORDER BY attempt;
