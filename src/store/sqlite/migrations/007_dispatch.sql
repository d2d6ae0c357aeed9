-- 007_dispatch: Postoffice's model (src/dispatch, docs/dispatch.md): topics, their publishers (a webhook URL or an
-- AMQP exchange), the messages sent to a topic, and one delivery per message and publisher, with every attempt.
-- A delivery is carried out by Conveyor tasks (type dispatch.deliver, data {delivery, generation}); its row says
-- where it stands and is the only thing a task's handler trusts.
-- Times are integer milliseconds since the epoch; JSON columns hold text.

CREATE TABLE topics (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  origin_host TEXT NOT NULL,
  recovery_enabled INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE publishers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  topic_id INTEGER NOT NULL REFERENCES topics (id),
  target TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('http', 'amqp')),
  active INTEGER NOT NULL DEFAULT 0,
  deleted INTEGER NOT NULL DEFAULT 0,
  seconds_timeout INTEGER NOT NULL,
  seconds_retry INTEGER NOT NULL,
  retry_mode TEXT NOT NULL CHECK (retry_mode IN ('schedule', 'fixed')),
  max_attempts INTEGER,
  chunk_size INTEGER,
  concurrency INTEGER,
  -- Signing secrets, newest first: [{secret, expiresAt}] (expiresAt null for the current one).
  secrets TEXT NOT NULL DEFAULT '[]',
  disabled_reason TEXT,
  -- Since when every attempt has failed (null after a success): what auto-disabling measures.
  failing_since INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
-- Postoffice's uniqueness, among publishers not deleted (Postoffice's own index also counted deleted ones, so a
-- deleted publisher could never be made again).
CREATE UNIQUE INDEX publishers_target ON publishers (topic_id, target, type) WHERE deleted = 0;

CREATE TABLE messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  topic_id INTEGER NOT NULL REFERENCES topics (id),
  payload TEXT NOT NULL,
  attributes TEXT NOT NULL DEFAULT '{}',
  idempotency_key TEXT,
  received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_idempotency ON messages (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Search pages go newest first by (received_at, id): these indexes give them in that order, from the cursor on.
CREATE INDEX messages_received ON messages (received_at, id);
CREATE INDEX messages_topic ON messages (topic_id, received_at, id);

-- One row per attribute of a message, so that a search by attribute reads its matches in page order.
CREATE TABLE message_attributes (
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  PRIMARY KEY (key, value, received_at, message_id)
) WITHOUT ROWID;

-- The words of each payload (rowid = message id), for search by payload text. Contentless: the payload is in
-- messages already. Diacritics are kept, as PostgreSQL's index keeps them.
CREATE VIRTUAL TABLE message_words USING fts5 (payload, content = '', contentless_delete = 1,
  tokenize = 'unicode61 remove_diacritics 0');

CREATE TABLE deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id INTEGER NOT NULL REFERENCES messages (id),
  publisher_id INTEGER NOT NULL REFERENCES publishers (id),
  state TEXT NOT NULL
    CHECK (state IN ('scheduled', 'pending', 'held', 'delivered', 'failed', 'discarded', 'cancelled')),
  -- Bumped whenever the delivery gets a new task or stops wanting one: a task whose generation is not the
  -- delivery's is stale and sends nothing.
  generation INTEGER NOT NULL DEFAULT 1,
  attempts INTEGER NOT NULL DEFAULT 0,
  -- Failed attempts since the delivery was created or replayed: the position in the retry schedule.
  step INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  last_status INTEGER,
  last_error TEXT,
  -- The message's, copied so that the indexes below give deliveries (and messages) in search-page order.
  received_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER,
  UNIQUE (message_id, publisher_id)
);
-- What the retry timer promotes when due.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'scheduled';
-- Deliveries that are not delivered, by publisher (held ones to release, a window to replay, those to discard)
-- and by state (the failing list, search by delivery state). Delivered ones, nearly all, stay out of both.
CREATE INDEX deliveries_publisher ON deliveries (publisher_id, state, received_at, message_id)
  WHERE state <> 'delivered';
CREATE INDEX deliveries_state ON deliveries (state, received_at, message_id, publisher_id) WHERE state <> 'delivered';

CREATE TABLE delivery_attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
  attempt INTEGER NOT NULL,
  task_id INTEGER,
  at INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  status INTEGER,
  outcome TEXT NOT NULL,
  error TEXT,
  response_body TEXT,
  -- What was sent, bar the body: {target, headers}.
  request TEXT NOT NULL,
  next_attempt_at INTEGER
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);
