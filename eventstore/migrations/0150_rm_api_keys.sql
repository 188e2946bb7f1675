-- Read model of the API keys projection (projections/apikeys.go), disposable
-- like every rm_ table. The secret's hash is not copied: only the key
-- aggregate checks secrets.
CREATE TABLE rm_api_keys (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    role        text        NOT NULL,
    created_at  timestamptz NOT NULL,
    created_by  text        NOT NULL,
    -- NULL while the key is live.
    revoked_at  timestamptz,
    revoked_by  text        NOT NULL DEFAULT '',
    -- The key stream's version this row reflects.
    version     bigint      NOT NULL
);

-- Names of live keys are unique case-insensitively (the event store
-- enforces it with name reservation streams); a revoked key frees its name.
CREATE UNIQUE INDEX rm_api_keys_lower_name ON rm_api_keys (lower(name)) WHERE revoked_at IS NULL;
CREATE INDEX rm_api_keys_name_order ON rm_api_keys ((name COLLATE "C"), id) WHERE revoked_at IS NULL;
