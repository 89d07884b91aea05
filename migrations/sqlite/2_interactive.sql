-- Interactive flows: pending authorization requests, SSO sessions, consents,
-- authorization codes and refresh-token families.
CREATE TABLE auth_requests (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    request      TEXT NOT NULL,
    csrf         TEXT NOT NULL,
    binding_hash TEXT NOT NULL,
    session_id   TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    sid        TEXT NOT NULL UNIQUE,
    sub        TEXT NOT NULL,
    identity   TEXT NOT NULL,
    auth_time  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_sub ON sessions (sub);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
    sub        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (sub, client_id)
);

CREATE TABLE auth_codes (
    code_hash   TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    grant_data  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    redeemed_at INTEGER,
    family_id   TEXT,
    access_jti  TEXT,
    access_exp  INTEGER
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE refresh_families (
    id                TEXT PRIMARY KEY,
    client_id         TEXT NOT NULL,
    sub               TEXT NOT NULL,
    grant_data        TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    revoked_at        INTEGER
);
CREATE INDEX refresh_families_sub ON refresh_families (sub);

CREATE TABLE refresh_tokens (
    token_hash      TEXT PRIMARY KEY,
    family_id       TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    created_at      INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    rotated_at      INTEGER,
    access_jti      TEXT,
    access_exp      INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
