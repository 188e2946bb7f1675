-- What `gantry run show` says besides the status (projections/runs.go):
-- the summary of the run's last plan (NULL when no worker reported one, as
-- before workers did), the note given with the stop request, and the worker
-- that held the run when it entered each status ('' when none did). Runs
-- projected before this migration get them with `gantry projector rebuild
-- runs`.
ALTER TABLE rm_runs
    ADD COLUMN plan_add     integer,
    ADD COLUMN plan_change  integer,
    ADD COLUMN plan_destroy integer,
    ADD COLUMN stop_note    text NOT NULL DEFAULT '';

ALTER TABLE rm_run_history
    ADD COLUMN worker_id text NOT NULL DEFAULT '';
