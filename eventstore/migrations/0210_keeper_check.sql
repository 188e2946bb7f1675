-- The secrets keeper is chosen once, at install: its first start stores a
-- known value encrypted with it here, and every start decrypts it, so that
-- a server given another keeper (GANTRY_SECRETS_URL) stops at once instead
-- of failing on each secret, state file and log. The scheme (base64key,
-- rsakey, awskms, ...) names the installed kind of keeper in that error.
CREATE TABLE keeper_check (
    id         smallint    PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    scheme     text        NOT NULL,
    ciphertext bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
