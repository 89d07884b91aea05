-- Values that may be used once (client assertion ids, RFC 7523 §3 item 7), kept until the
-- assertion would have expired, so that a replay is refused on every node.
CREATE TABLE used_once (
    key        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_once_expires_at ON used_once (expires_at);

-- Device authorization requests (RFC 8628). The device code is stored hashed; the user code
-- is what a person types, and `id` names the request in the browser flow.
CREATE TABLE device_codes (
    device_code_hash    TEXT PRIMARY KEY,
    user_code           TEXT NOT NULL UNIQUE,
    id                  TEXT NOT NULL UNIQUE,
    client_id           TEXT NOT NULL,
    request             TEXT NOT NULL,
    status              TEXT NOT NULL,
    grant_data          TEXT,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    poll_interval       BIGINT NOT NULL,
    last_poll_at        BIGINT,
    polls               BIGINT NOT NULL DEFAULT 0,
    slow_down           BIGINT NOT NULL DEFAULT 0,
    approve_after_polls BIGINT,
    taken_at_poll       BIGINT
);
CREATE INDEX device_codes_expires_at ON device_codes (expires_at);

-- Which clients a session signed in to, for back-channel logout (only clients that have a
-- backchannel_logout_uri are recorded).
CREATE TABLE session_clients (
    sid        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX session_clients_expires_at ON session_clients (expires_at);
