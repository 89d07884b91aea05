-- Clients, signing keys and revoked token ids.
CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT,
    metadata    TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_key  BLOB NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL
);
CREATE INDEX signing_keys_activates_at ON signing_keys (activates_at, kid);

CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
