-- The runs that have not ended, by pool and status: what the /metrics
-- endpoint counts at every scrape (projections/gauges.go). Partial, so a
-- scrape reads the work in flight rather than every run ever queued.
CREATE INDEX rm_runs_open ON rm_runs (pool_id, status)
    WHERE status NOT IN ('FINISHED', 'FAILED', 'DISCARDED', 'STOPPED', 'CANCELED', 'SKIPPED');
