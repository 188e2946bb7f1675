-- Read models of the vcs and schedules projections (projections/vcs.go,
-- projections/schedules.go), disposable like every rm_ table.

-- The VCS integration a stack is tied to (stacks projection).
ALTER TABLE rm_stacks ADD COLUMN vcs_integration_id text NOT NULL DEFAULT '';
CREATE INDEX rm_stacks_vcs ON rm_stacks (vcs_integration_id) WHERE vcs_integration_id <> '';

-- Integrations. Their secrets stay in the event store, encrypted.
CREATE TABLE rm_vcs_integrations (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    provider    text        NOT NULL,
    api_url     text        NOT NULL,
    has_token   boolean     NOT NULL,
    has_ssh_key boolean     NOT NULL,
    created_at  timestamptz NOT NULL,
    created_by  text        NOT NULL
);
CREATE UNIQUE INDEX rm_vcs_integrations_lower_name ON rm_vcs_integrations (lower(name));

-- Webhook deliveries, without their payloads.
CREATE TABLE rm_vcs_deliveries (
    id             text        PRIMARY KEY,
    integration_id text        NOT NULL,
    provider       text        NOT NULL,
    event          text        NOT NULL,
    external_id    text        NOT NULL,
    status         text        NOT NULL,
    reason         text        NOT NULL DEFAULT '',
    run_ids        text[]      NOT NULL DEFAULT '{}',
    attempts       integer     NOT NULL,
    received_at    timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX rm_vcs_deliveries_newest ON rm_vcs_deliveries (received_at DESC, id DESC);
CREATE INDEX rm_vcs_deliveries_status ON rm_vcs_deliveries (status, received_at DESC);

-- Cron schedules: what the scheduler's schedule loop lists.
CREATE TABLE rm_schedules (
    id           text        PRIMARY KEY,
    stack_id     text        NOT NULL,
    kind         text        NOT NULL,
    cron         text        NOT NULL,
    reconcile    boolean     NOT NULL,
    task_command text        NOT NULL,
    since        timestamptz NOT NULL,
    last_tick    timestamptz,
    last_run_id  text        NOT NULL DEFAULT '',
    last_error   text        NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL
);
CREATE INDEX rm_schedules_stack ON rm_schedules (stack_id);

-- Drift detected on stacks, newest last.
CREATE TABLE rm_drift_detections (
    run_id           text        PRIMARY KEY,
    stack_id         text        NOT NULL,
    commit           text        NOT NULL,
    resources        text[]      NOT NULL,
    reconcile_run_id text        NOT NULL,
    at               timestamptz NOT NULL
);
CREATE INDEX rm_drift_detections_stack ON rm_drift_detections (stack_id, at DESC);
