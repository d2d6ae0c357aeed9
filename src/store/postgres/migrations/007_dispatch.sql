-- 007_dispatch: Postoffice's model (src/dispatch, docs/dispatch.md): topics, their publishers (a webhook URL or an
-- AMQP exchange), the messages sent to a topic, and one delivery per message and publisher, with every attempt.
-- A delivery is carried out by Conveyor tasks (type dispatch.deliver, data {delivery, generation}); its row says
-- where it stands and is the only thing a task's handler trusts.
-- Payloads are json, not jsonb: a receiver gets the keys in the order the sender wrote them.

CREATE TABLE {{schema}}.topics (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE,
  origin_host text NOT NULL,
  recovery_enabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE {{schema}}.publishers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic_id bigint NOT NULL REFERENCES {{schema}}.topics (id),
  target text NOT NULL,
  type text NOT NULL CHECK (type IN ('http', 'amqp')),
  active boolean NOT NULL DEFAULT false,
  deleted boolean NOT NULL DEFAULT false,
  seconds_timeout integer NOT NULL,
  seconds_retry integer NOT NULL,
  retry_mode text NOT NULL CHECK (retry_mode IN ('schedule', 'fixed')),
  max_attempts integer,
  chunk_size integer,
  concurrency integer,
  -- Signing secrets, newest first: [{secret, expiresAt}] (expiresAt null for the current one).
  secrets jsonb NOT NULL DEFAULT '[]',
  disabled_reason text,
  -- Since when every attempt has failed (null after a success): what auto-disabling measures.
  failing_since timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
-- Postoffice's uniqueness, among publishers not deleted (Postoffice's own index also counted deleted ones, so a
-- deleted publisher could never be made again).
CREATE UNIQUE INDEX publishers_target ON {{schema}}.publishers (topic_id, target, type) WHERE NOT deleted;
CREATE INDEX publishers_topic ON {{schema}}.publishers (topic_id);

CREATE TABLE {{schema}}.messages (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic_id bigint NOT NULL REFERENCES {{schema}}.topics (id),
  payload json NOT NULL,
  attributes json NOT NULL DEFAULT '{}',
  idempotency_key text,
  received_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX messages_idempotency ON {{schema}}.messages (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Search pages go newest first by (received_at, id): these indexes give them in that order, from the cursor on.
CREATE INDEX messages_received ON {{schema}}.messages (received_at, id);
CREATE INDEX messages_topic ON {{schema}}.messages (topic_id, received_at, id);
-- The words of each payload, for search by payload text: split at every character that is not a letter or a
-- digit (as SQLite's unicode61 tokenizer splits them), so that both drivers find the same messages.
CREATE INDEX messages_words ON {{schema}}.messages
  USING gin (to_tsvector('simple', regexp_replace(payload::text, '[^[:alnum:]]+', ' ', 'g')));

-- One row per attribute of a message, so that a search by attribute reads its matches in page order.
CREATE TABLE {{schema}}.message_attributes (
  key text NOT NULL,
  value text NOT NULL,
  received_at timestamptz NOT NULL,
  message_id bigint NOT NULL,
  PRIMARY KEY (key, value, received_at, message_id)
);

CREATE TABLE {{schema}}.deliveries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  message_id bigint NOT NULL REFERENCES {{schema}}.messages (id),
  publisher_id bigint NOT NULL REFERENCES {{schema}}.publishers (id),
  state text NOT NULL
    CHECK (state IN ('scheduled', 'pending', 'held', 'delivered', 'failed', 'discarded', 'cancelled')),
  -- Bumped whenever the delivery gets a new task or stops wanting one: a task whose generation is not the
  -- delivery's is stale and sends nothing.
  generation integer NOT NULL DEFAULT 1,
  attempts integer NOT NULL DEFAULT 0,
  -- Failed attempts since the delivery was created or replayed: the position in the retry schedule.
  step integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  last_status integer,
  last_error text,
  -- The message's, copied so that the indexes below give deliveries (and messages) in search-page order.
  received_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  finished_at timestamptz,
  UNIQUE (message_id, publisher_id)
);
-- What the retry timer promotes when due.
CREATE INDEX deliveries_due ON {{schema}}.deliveries (next_attempt_at) WHERE state = 'scheduled';
-- Deliveries that are not delivered, by publisher (held ones to release, a window to replay, those to discard)
-- and by state (the failing list, search by delivery state). Delivered ones, nearly all, stay out of both; a
-- statement that reads them says `state <> 'delivered'` besides its own condition, so that its generic plan may.
CREATE INDEX deliveries_publisher ON {{schema}}.deliveries (publisher_id, state, received_at, message_id)
  WHERE state <> 'delivered';
CREATE INDEX deliveries_state ON {{schema}}.deliveries (state, received_at, message_id, publisher_id)
  WHERE state <> 'delivered';

CREATE TABLE {{schema}}.delivery_attempts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id bigint NOT NULL REFERENCES {{schema}}.deliveries (id),
  attempt integer NOT NULL,
  task_id bigint,
  at timestamptz NOT NULL,
  duration_ms integer NOT NULL,
  status integer,
  outcome text NOT NULL,
  error text,
  response_body text,
  -- What was sent, bar the body: {target, headers}.
  request jsonb NOT NULL,
  next_attempt_at timestamptz
);
CREATE INDEX delivery_attempts_delivery ON {{schema}}.delivery_attempts (delivery_id, attempt);

-- The channel of a topic's events (core/channels.ts topicChannel): topic:<name>, or dispatch for a name a channel
-- cannot hold. Statements that append dispatch's events call it.
CREATE FUNCTION {{schema}}.topic_channel(name text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN name ~ '^[A-Za-z0-9_.:@=-]{1,194}$' THEN 'topic:' || name ELSE 'dispatch' END
$$;
