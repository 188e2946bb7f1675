-- Read model of the workers projection (projections/workers.go), disposable
-- like every rm_ table.
CREATE TABLE rm_workers (
    id            text        PRIMARY KEY,
    pool_id       text        NOT NULL,
    metadata      jsonb       NOT NULL,
    registered_at timestamptz NOT NULL,
    drained       boolean     NOT NULL DEFAULT false,
    -- The run the worker processes, or did when it went away.
    run_id        text        NOT NULL DEFAULT '',
    -- '' while the worker lives; LOST or EXITED once it went away.
    gone          text        NOT NULL DEFAULT '' CHECK (gone IN ('', 'LOST', 'EXITED')),
    gone_at       timestamptz,
    gone_note     text        NOT NULL DEFAULT '',
    -- As worker.State.Status: gone first, then drained (even while it
    -- finishes a run), then busy with a run, else idle.
    status        text        GENERATED ALWAYS AS (
                      CASE WHEN gone <> '' THEN gone
                           WHEN drained THEN 'DRAINED'
                           WHEN run_id <> '' THEN 'BUSY'
                           ELSE 'IDLE' END) STORED,
    updated_at    timestamptz NOT NULL,
    -- The worker stream's version this row reflects.
    version       bigint      NOT NULL
);

CREATE INDEX rm_workers_pool_live ON rm_workers (pool_id, registered_at, id) WHERE gone = '';
