-- 005_live_log: the event log gets an epoch, a random id made with the log, so that a client of the live stream
-- never trusts an offset from another life of the log (a file made anew has a new epoch).
CREATE TABLE log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO log_meta (key, value) VALUES ('epoch', lower(hex(randomblob(8))));
