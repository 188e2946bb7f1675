-- Keys the server signs with (the worker pool CA, the API token key). The
-- private key is stored only as ciphertext made by the configured secrets
-- keeper (services/crypto.Keeper); the public half is kept in clear so that it
-- can be checked against the decrypted private key and published. A key that
-- needs a certificate (the pool CA) has it in certificate_pem.
CREATE TABLE server_keys (
    name               text        PRIMARY KEY CHECK (name <> ''),
    public_pem         text        NOT NULL,
    private_ciphertext bytea       NOT NULL,
    certificate_pem    text,
    created_at         timestamptz NOT NULL DEFAULT now()
);
