-- Read models of the stacks projection (projections/stacks.go). Like every
-- rm_ table they are disposable: `gantry projector rebuild` recreates them
-- from the events. Times are the events' own (the domain's At), so two
-- databases fed the same events hold the same rows.
CREATE TABLE rm_stacks (
    id                 text        PRIMARY KEY,
    name               text        NOT NULL,
    description        text        NOT NULL,
    repository_url     text        NOT NULL,
    branch             text        NOT NULL,
    project_root       text        NOT NULL,
    tool               text        NOT NULL,
    worker_pool_id     text        NOT NULL,
    runner_image       text        NOT NULL,
    autodeploy         boolean     NOT NULL,
    managed_state      boolean     NOT NULL,
    labels             text[]      NOT NULL,
    hooks              jsonb       NOT NULL,
    -- The manual lock (a user's) and the run lock (the exclusive lock of a
    -- tracked run or task) are independent: both may be held at once.
    manual_lock_holder text        NOT NULL DEFAULT '',
    manual_lock_note   text        NOT NULL DEFAULT '',
    manual_locked_at   timestamptz,
    run_lock_holder    text        NOT NULL DEFAULT '',
    run_locked_at      timestamptz,
    -- Runs waiting for the run lock, head first.
    queue              text[]      NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL,
    created_by         text        NOT NULL,
    updated_at         timestamptz NOT NULL,
    -- The stack stream's version this row reflects.
    version            bigint      NOT NULL
);

-- Names are unique case-insensitively: the event store enforces it with
-- name reservation streams, so this index can never refuse an event.
-- A deleted stack's row is removed, which frees its name.
CREATE UNIQUE INDEX rm_stacks_lower_name ON rm_stacks (lower(name));
-- ListStacks pages by (name, id) in byte order.
CREATE INDEX rm_stacks_name_order ON rm_stacks ((name COLLATE "C"), id);
CREATE INDEX rm_stacks_worker_pool ON rm_stacks (worker_pool_id);

-- Environment variables. A secret's ciphertext is never copied here: value
-- is NULL for every secret.
CREATE TABLE rm_stack_env (
    stack_id   text        NOT NULL,
    key        text        NOT NULL,
    name       text        NOT NULL,
    scope      text        NOT NULL,
    secret     boolean     NOT NULL,
    value      text,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (stack_id, key),
    CHECK ((secret AND value IS NULL) OR (NOT secret AND value IS NOT NULL))
);
