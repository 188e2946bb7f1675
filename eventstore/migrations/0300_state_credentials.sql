-- One-off credentials of Terraform's http backend (services/statebackend),
-- minted for one run phase. Only a SHA-256 of the random 256-bit password is
-- kept. A row grants nothing by itself: each request is also checked against
-- the run's current status, so credentials stop working when the run leaves
-- the phase they were minted for. Rows of ended runs may be deleted.
CREATE TABLE state_credentials (
    username        text        PRIMARY KEY,
    password_sha256 bytea       NOT NULL CHECK (length(password_sha256) = 32),
    stack_id        text        NOT NULL,
    run_id          text        NOT NULL,
    phase           text        NOT NULL,
    access          text        NOT NULL CHECK (access IN ('read', 'read-write')),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX state_credentials_run_id ON state_credentials (run_id);
