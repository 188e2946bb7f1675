-- Read model of the pools projection (projections/pools.go), disposable like
-- every rm_ table. The pool secret's hash is not copied: only the pool
-- aggregate checks secrets.
CREATE TABLE rm_worker_pools (
    id                 text        PRIMARY KEY,
    name               text        NOT NULL,
    description        text        NOT NULL,
    labels             text[]      NOT NULL,
    drift_run_limit    integer     NOT NULL,
    public             boolean     NOT NULL,
    generation         integer     NOT NULL,
    cert_pem           text        NOT NULL,
    cert_serial        text        NOT NULL,
    cert_fingerprint   text        NOT NULL,
    cert_key_algorithm text        NOT NULL,
    cert_key_bits      integer     NOT NULL,
    -- Parsed from the PEM; NULL if it does not parse.
    cert_not_after     timestamptz,
    cycle_requested_at timestamptz,
    created_at         timestamptz NOT NULL,
    created_by         text        NOT NULL,
    updated_at         timestamptz NOT NULL,
    deleted            boolean     NOT NULL DEFAULT false,
    -- The pool stream's version this row reflects.
    version            bigint      NOT NULL
);

-- Names of live pools are unique case-insensitively (the event store
-- enforces it with name reservation streams); a deleted pool frees its name.
CREATE UNIQUE INDEX rm_worker_pools_lower_name ON rm_worker_pools (lower(name)) WHERE NOT deleted;
CREATE INDEX rm_worker_pools_name_order ON rm_worker_pools ((name COLLATE "C"), id) WHERE NOT deleted;
