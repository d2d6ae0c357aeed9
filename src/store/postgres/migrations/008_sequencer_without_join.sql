-- 008_sequencer_without_join: the sequencer numbers its rows with one index scan of their ids and no join. In
-- 004 the update joined the log with `pending`; a generic plan made while the log held two rows (a node's first
-- claim) drove that join from `pending` and scanned every id of the batch for each row: 2,000,000 log rows read
-- to number 2,000 (plans.test.ts). Each row's place in the batch now comes from a jsonb map, read by key.
CREATE OR REPLACE FUNCTION {{schema}}.event_sequence(batch integer, OUT sequenced integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  ids bigint[];
  -- For each row's id (as text), how many events the rows before it in the batch hold.
  before jsonb;
  total bigint;
  base bigint;
BEGIN
  sequenced := 0;
  IF EXISTS (SELECT 1 FROM {{schema}}.event_log l WHERE l."offset" IS NULL) THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('conveyor:event_sequence:{{schema}}', 0));
    SELECT array_agg(p.id), jsonb_object_agg(p.id::text, p.through - p.count), max(p.through), count(*)
    INTO ids, before, total, sequenced
    FROM (
      SELECT committed.id, committed.count, sum(committed.count) OVER (ORDER BY committed.lsn, committed.id) AS through
      FROM (
        SELECT l.id, l.lsn, l.count FROM {{schema}}.event_log l
        WHERE l."offset" IS NULL
        ORDER BY l.lsn, l.id
        LIMIT batch
      ) committed
    ) p;
    IF sequenced > 0 THEN
      UPDATE {{schema}}.event_counter SET value = value + total RETURNING value - total INTO base;
      UPDATE {{schema}}.event_log l SET "offset" = base + (before ->> l.id::text)::bigint + 1
      WHERE l.id = ANY (ids);
    END IF;
  END IF;
END
$$;
