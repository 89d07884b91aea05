-- Hardening: refresh families remember their session (logout ends them), a rotated refresh
-- token keeps the sealed response that carried its successor (a retry in the grace window
-- gets the same one), and a replayed code is marked so a family still being created from it
-- is born revoked.
ALTER TABLE refresh_families ADD COLUMN sid TEXT;
CREATE INDEX refresh_families_sid ON refresh_families (sid);
ALTER TABLE refresh_tokens ADD COLUMN successor_response BLOB;
ALTER TABLE auth_codes ADD COLUMN replayed_at INTEGER;
