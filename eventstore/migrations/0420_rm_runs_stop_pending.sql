-- The gateway answers a worker's heartbeat with the run it must stop, if
-- any (services/gateway/heartbeats.go): a safety net for the stop message,
-- which NATS delivers at most once. Few rows ever match.
CREATE INDEX rm_runs_stop_pending ON rm_runs (worker_id) WHERE worker_id <> '' AND stop_requested_by <> '';
