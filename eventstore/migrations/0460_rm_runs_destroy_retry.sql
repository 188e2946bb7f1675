-- Day-two runs (projections/runs.go): a destroy run, and the run a retry
-- retries. Runs projected before these columns existed had neither.
ALTER TABLE rm_runs
    ADD COLUMN destroy  boolean NOT NULL DEFAULT false,
    ADD COLUMN retry_of text    NOT NULL DEFAULT '';
