-- The event log. Rows are only ever inserted: never updated, never deleted.
-- tx_id is the appending transaction's id (xid8 as bigint): readers order by
-- (tx_id, position) and read only transactions below the snapshot xmin, so an
-- event that commits late is never skipped.
CREATE TABLE events (
    position       bigserial   PRIMARY KEY,
    tx_id          bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    event_id       uuid        NOT NULL UNIQUE,
    stream_id      text        NOT NULL,
    stream_type    text        NOT NULL,
    version        bigint      NOT NULL CHECK (version > 0),
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL CHECK (schema_version > 0),
    payload        jsonb       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL,
    UNIQUE (stream_id, version)
);

CREATE INDEX events_commit_order ON events (tx_id, position);

-- Consumers (the relay, projections) keep their place here, updated in the
-- same transaction as their effect.
CREATE TABLE checkpoints (
    name       text        PRIMARY KEY,
    tx_id      bigint      NOT NULL,
    position   bigint      NOT NULL,
    event_id   uuid,
    updated_at timestamptz NOT NULL DEFAULT now()
);
