-- 004_plans_by_id: the sequencer numbers the rows it found by their ids, as every statement of the driver now
-- names the rows it changes (see SESSION_SETTINGS in statements.ts): joined with `pending` alone, its plan, made
-- while the log was empty, could read the whole log for each call. Otherwise as in 003_lean_writes.sql.
CREATE OR REPLACE FUNCTION {{schema}}.event_sequence(batch integer, OUT sequenced integer)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  sequenced := 0;
  IF EXISTS (SELECT 1 FROM {{schema}}.event_log l WHERE l."offset" IS NULL) THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('conveyor:event_sequence:{{schema}}', 0));
    WITH pending AS MATERIALIZED (
      SELECT id, count, sum(count) OVER (ORDER BY lsn, id) AS through
      FROM (
        SELECT l.id, l.lsn, l.count FROM {{schema}}.event_log l
        WHERE l."offset" IS NULL
        ORDER BY l.lsn, l.id
        LIMIT batch
      ) committed
    ),
    numbered AS (
      UPDATE {{schema}}.event_log l SET "offset" = c.value + p.through - p.count + 1
      FROM pending p, {{schema}}.event_counter c
      WHERE l.id = ANY (ARRAY(SELECT id FROM pending)) AND l.id = p.id
    ),
    advanced AS (
      UPDATE {{schema}}.event_counter SET value = value + (SELECT sum(count) FROM pending)
      WHERE EXISTS (SELECT 1 FROM pending)
    )
    SELECT count(*) INTO sequenced FROM pending;
  END IF;
END
$$;
