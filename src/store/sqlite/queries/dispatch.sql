-- SQLite statements of dispatch (DispatchStore, src/store/dispatch-store.ts): topics, publishers, messages,
-- deliveries and their attempts. Parameters are named (:name); times are epoch milliseconds. The searches, whose
-- filters vary, are built in sqlite/dispatch-search.ts.

-- name: topicInsert
INSERT INTO topics (name, origin_host, recovery_enabled, created_at, updated_at)
VALUES (:name, :origin_host, :recovery_enabled, :now, :now)
RETURNING *;

-- name: topicById
SELECT * FROM topics WHERE id = :id;

-- name: topicByName
SELECT * FROM topics WHERE name = :name;

-- name: topicList
SELECT * FROM topics ORDER BY id;

-- name: topicWrite
-- Writes every changeable column of topic :id (the driver merged the changes into its row).
UPDATE topics SET origin_host = :origin_host, recovery_enabled = :recovery_enabled, updated_at = :now
WHERE id = :id RETURNING *;

-- name: topicRecoveryHosts
SELECT DISTINCT origin_host FROM topics WHERE recovery_enabled = 1 ORDER BY origin_host;

-- name: publisherInsert
INSERT INTO publishers (topic_id, target, type, active, seconds_timeout, seconds_retry, retry_mode, max_attempts,
  chunk_size, concurrency, secrets, created_at, updated_at)
VALUES (:topic_id, :target, :type, :active, :seconds_timeout, :seconds_retry, :retry_mode, :max_attempts,
  :chunk_size, :concurrency, :secrets, :now, :now)
RETURNING id;

-- name: publisherById
SELECT p.*, t.name AS topic_name FROM publishers p JOIN topics t ON t.id = p.topic_id WHERE p.id = :id;

-- name: publisherList
-- Publishers of topic :topic_id (null: every topic), deleted ones only when :deleted is 1.
SELECT p.*, t.name AS topic_name FROM publishers p JOIN topics t ON t.id = p.topic_id
WHERE (:topic_id IS NULL OR p.topic_id = :topic_id) AND (:deleted = 1 OR p.deleted = 0)
ORDER BY p.id;

-- name: publisherWrite
-- Writes every changeable column of publisher :id (the driver merged the changes into its row).
UPDATE publishers SET target = :target, active = :active, seconds_timeout = :seconds_timeout,
  seconds_retry = :seconds_retry, retry_mode = :retry_mode, max_attempts = :max_attempts, chunk_size = :chunk_size,
  concurrency = :concurrency, secrets = :secrets, disabled_reason = :disabled_reason, updated_at = :now
WHERE id = :id;

-- name: publisherMarkDeleted
UPDATE publishers SET deleted = 1, updated_at = :now WHERE id = :id;

-- name: publishersOfTopic
-- The publishers a new message of topic :topic_id goes to: every one not deleted.
SELECT id, active FROM publishers WHERE topic_id = :topic_id AND deleted = 0 ORDER BY id;

-- name: publisherDisable
UPDATE publishers SET active = 0, disabled_reason = :reason, updated_at = :now WHERE id = :id AND active = 1;

-- name: publisherSucceeded
-- Written only when it changes something: most attempts succeed, and the publisher's row is every one's.
UPDATE publishers SET failing_since = NULL WHERE id = :id AND failing_since IS NOT NULL;

-- name: publisherFailed
UPDATE publishers SET failing_since = :now WHERE id = :id AND failing_since IS NULL;

-- name: messageByKey
SELECT id, received_at FROM messages WHERE idempotency_key = :key;

-- name: messageInsert
INSERT INTO messages (topic_id, payload, attributes, idempotency_key, received_at)
VALUES (:topic_id, :payload, :attributes, :key, :now);

-- name: messageWordsInsert
INSERT INTO message_words (rowid, payload) VALUES (:id, :payload);

-- name: messageAttributeInsert
INSERT OR IGNORE INTO message_attributes (key, value, received_at, message_id) VALUES (:key, :value, :at, :id);

-- name: messageById
SELECT m.*, t.name AS topic_name FROM messages m JOIN topics t ON t.id = m.topic_id WHERE m.id = :id;

-- name: deliveryInsert
INSERT INTO deliveries (message_id, publisher_id, state, next_attempt_at, received_at, created_at, updated_at)
VALUES (:message_id, :publisher_id, :state, :next_attempt_at, :now, :now, :now);

-- name: deliveriesOfMessage
SELECT * FROM deliveries WHERE message_id = :message_id ORDER BY id;

-- name: deliveryById
SELECT * FROM deliveries WHERE id = :id;

-- name: deliveryWork
-- Deliveries :ids (a JSON array) with their message, publisher and topic, for their tasks: columns prefixed d_, m_,
-- p_ (t_name).
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
FROM deliveries d
JOIN messages m ON m.id = d.message_id
JOIN publishers p ON p.id = d.publisher_id
JOIN topics t ON t.id = m.topic_id
WHERE d.id IN (SELECT value FROM json_each(:ids));

-- name: deliveryAttemptInsert
INSERT INTO delivery_attempts (delivery_id, attempt, task_id, at, duration_ms, status, outcome, error, response_body,
  request, next_attempt_at)
VALUES (:delivery_id, :attempt, :task_id, :at, :duration_ms, :status, :outcome, :error, :response_body, :request,
  :next_attempt_at);

-- name: deliveryAfterAttempt
-- Moves pending delivery :id of generation :generation on after an attempt: to :state, with :status and :error.
UPDATE deliveries SET state = :state, generation = generation + 1, attempts = attempts + 1, step = step + :step,
  next_attempt_at = :next_attempt_at, last_status = :status, last_error = :error, updated_at = :now,
  finished_at = CASE WHEN :state IN ('delivered', 'failed') THEN :now ELSE NULL END
WHERE id = :id AND generation = :generation AND state = 'pending'
RETURNING *;

-- name: deliverySettle
-- Moves pending delivery :id of generation :generation to :state without an attempt.
UPDATE deliveries SET state = :state, generation = generation + 1, next_attempt_at = :next_attempt_at,
  updated_at = :now, finished_at = CASE WHEN :state = 'discarded' THEN :now ELSE NULL END
WHERE id = :id AND generation = :generation AND state = 'pending'
RETURNING *;

-- name: deliveriesDue
-- Scheduled deliveries due at :now, earliest first, with their topic's name.
SELECT d.id, d.generation, t.name AS topic
FROM deliveries d JOIN messages m ON m.id = d.message_id JOIN topics t ON t.id = m.topic_id
WHERE d.state = 'scheduled' AND d.next_attempt_at <= :now
ORDER BY d.next_attempt_at LIMIT :limit;

-- name: deliveryMakePending
-- Gives scheduled delivery :id a new task (the caller inserts it, with the generation returned).
UPDATE deliveries SET state = 'pending', generation = generation + 1, next_attempt_at = NULL, updated_at = :now
WHERE id = :id AND state = 'scheduled'
RETURNING generation;

-- name: deliveryNextDueAt
SELECT min(next_attempt_at) AS at FROM deliveries WHERE state = 'scheduled';

-- name: deliveriesRelease
-- Publisher :publisher_id was enabled: its held deliveries are due now (the retry timer gives them tasks).
UPDATE deliveries SET state = 'scheduled', generation = generation + 1, next_attempt_at = :now, updated_at = :now
WHERE publisher_id = :publisher_id AND state = 'held'
RETURNING id;

-- name: deliveriesDiscard
-- Publisher :publisher_id was deleted: its deliveries waiting without a task are discarded.
UPDATE deliveries SET state = 'discarded', generation = generation + 1, next_attempt_at = NULL, updated_at = :now,
  finished_at = :now
WHERE publisher_id = :publisher_id AND state IN ('scheduled', 'held')
RETURNING id;

-- name: deliveriesReplayWindow
-- Up to :limit replayable deliveries of publisher :publisher_id received in [:from, :to).
SELECT id FROM deliveries
WHERE publisher_id = :publisher_id AND state IN ('failed', 'cancelled') AND received_at >= :from AND received_at < :to
ORDER BY received_at, message_id LIMIT :limit;

-- name: deliveryReplay
-- Replays delivery :id (failed or cancelled, its publisher not deleted): due now from the start of the schedule,
-- or held when its publisher is disabled.
UPDATE deliveries SET state = CASE WHEN p.active = 1 THEN 'scheduled' ELSE 'held' END,
  generation = generation + 1, step = 0, next_attempt_at = CASE WHEN p.active = 1 THEN :now END, updated_at = :now,
  finished_at = NULL
FROM publishers p
WHERE deliveries.id = :id AND deliveries.state IN ('failed', 'cancelled') AND p.id = deliveries.publisher_id
  AND p.deleted = 0
RETURNING deliveries.id, deliveries.state, deliveries.publisher_id;

-- name: deliveryRetryNow
-- Scheduled delivery :id is due at :now when its next attempt is later (a person's "retry now"): no attempt spent,
-- the same step of its schedule, the same generation (a scheduled delivery has no task to make stale).
UPDATE deliveries SET next_attempt_at = min(next_attempt_at, :now), updated_at = :now
WHERE id = :id AND state = 'scheduled'
RETURNING *;

-- name: deliveryCounts
-- The deliveries in each state but delivered, :limit at most each: per state, a walk of at most :limit entries of
-- deliveries_state (never the whole table; `state <> 'delivered'` is what lets SQLite use the partial index).
SELECT s.value AS state, (SELECT count(*) FROM (SELECT 1 FROM deliveries d
    WHERE d.state = s.value AND d.state <> 'delivered' LIMIT :limit)) AS n
FROM json_each('["scheduled","pending","held","failed","discarded","cancelled"]') s;

-- name: deliveryCountsByPublisher
-- Like deliveryCounts, for each publisher of :ids (a JSON array): a walk of at most :limit entries of
-- deliveries_publisher per publisher and state.
SELECT p.value AS publisher_id, s.value AS state, (SELECT count(*) FROM (SELECT 1 FROM deliveries d
    WHERE d.publisher_id = p.value AND d.state = s.value AND d.state <> 'delivered' LIMIT :limit)) AS n
FROM json_each(:ids) p CROSS JOIN json_each('["scheduled","pending","held","failed","discarded","cancelled"]') s;

-- name: deliveryCancel
UPDATE deliveries SET state = 'cancelled', generation = generation + 1, next_attempt_at = NULL, updated_at = :now,
  finished_at = :now
WHERE id = :id AND state IN ('scheduled', 'pending', 'held')
RETURNING *;

-- name: topicOfDeliveries
-- The topic name of each delivery of :ids (a JSON array).
SELECT d.id, t.name AS topic FROM deliveries d JOIN messages m ON m.id = d.message_id
JOIN topics t ON t.id = m.topic_id WHERE d.id IN (SELECT value FROM json_each(:ids));

-- name: attemptList
SELECT * FROM delivery_attempts WHERE delivery_id = :delivery_id ORDER BY attempt;
