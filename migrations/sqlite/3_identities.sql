-- The last known claims of every identity that signed in, for userinfo and refresh.
CREATE TABLE identities (
    sub        TEXT PRIMARY KEY,
    identity   TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
