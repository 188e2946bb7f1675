-- Read models of the runs projection (projections/runs.go), disposable like
-- every rm_ table.

-- What the runs projection needs of each stack, kept by itself (a
-- projection must not depend on another one's progress): its worker pool,
-- where its runs go, and the run holding its run lock. The lock holder is
-- kept here rather than on the run because a trigger appends the stack's
-- StackLockAcquired before the run's RunQueued.
CREATE TABLE rm_run_stacks (
    stack_id    text PRIMARY KEY,
    pool_id     text NOT NULL,
    lock_holder text NOT NULL DEFAULT ''
);

CREATE TABLE rm_runs (
    id                text        PRIMARY KEY,
    stack_id          text        NOT NULL,
    type              text        NOT NULL,
    status            text        NOT NULL,
    commit            text        NOT NULL,
    task_command      text        NOT NULL,
    drift             boolean     NOT NULL,
    autodeploy        boolean     NOT NULL,
    triggered_by      text        NOT NULL,
    -- The worker holding the run; '' before assignment, while UNCONFIRMED
    -- and after the end.
    worker_id         text        NOT NULL DEFAULT '',
    -- The pool the run belongs to: its stack's pool while it waits (it
    -- follows the stack to a new pool until a worker takes it), then the
    -- pool of the worker that took it.
    pool_id           text        NOT NULL,
    stop_requested_by text        NOT NULL DEFAULT '',
    has_changes       boolean     NOT NULL DEFAULT false,
    -- Entries in rm_run_history: the seq of the last one.
    history_len       integer     NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    -- The run stream's version this row reflects.
    version           bigint      NOT NULL
);

-- ListRuns: a stack's runs, newest first.
CREATE INDEX rm_runs_stack_newest ON rm_runs (stack_id, created_at DESC, id DESC);
-- A stack moving to another pool takes its waiting runs along.
CREATE INDEX rm_runs_stack_waiting ON rm_runs (stack_id) WHERE status IN ('QUEUED', 'READY');
-- PoolQueue: only runs that have not ended (nor wait for a confirmation).
CREATE INDEX rm_runs_pool_active ON rm_runs (pool_id)
    WHERE status NOT IN ('UNCONFIRMED', 'FINISHED', 'FAILED', 'DISCARDED', 'STOPPED', 'CANCELED', 'SKIPPED');

-- Each status change of a run, with who made it and why.
CREATE TABLE rm_run_history (
    run_id text        NOT NULL,
    seq    integer     NOT NULL,
    status text        NOT NULL,
    at     timestamptz NOT NULL,
    actor  text        NOT NULL,
    note   text        NOT NULL,
    PRIMARY KEY (run_id, seq)
);
