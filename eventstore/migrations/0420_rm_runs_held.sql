-- The gateway answers a worker's heartbeat with what the worker may have
-- missed of its run (services/gateway/heartbeats.go): a stop request, or
-- the assignment itself (NATS delivers both messages at most once). A
-- worker holds at most one run; only held runs are indexed.
CREATE INDEX rm_runs_held ON rm_runs (worker_id) WHERE worker_id <> '';
