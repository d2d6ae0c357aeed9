-- 005_live_log: the event log gets an epoch, a random id made with the log, so that a client of the live stream
-- never trusts an offset from another life of the log (a schema made anew has a new epoch).
CREATE TABLE {{schema}}.log_meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO {{schema}}.log_meta (key, value) VALUES ('epoch', substr(md5(random()::text || clock_timestamp()::text), 1, 16));
