-- 009_running_ids: the running tasks' ids, read by a plain scan of their partial index. Every task passes through
-- running, and each of its passes leaves an entry in tasks_running_node until a vacuum: a million tasks after the
-- last one, a list of the running tasks read a million dead entries and their heap pages each time (156 ms), as
-- the bitmap scan that the planner prefers for them never marks an entry dead. A plain index scan marks each dead
-- entry it meets, so that only the first reader after a burst pays for them (0.5 ms then, at 300,000 dead).
CREATE FUNCTION {{schema}}.running_task_ids() RETURNS SETOF bigint
LANGUAGE sql STABLE
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$ SELECT id FROM {{schema}}.tasks WHERE state = 'running' $$;
