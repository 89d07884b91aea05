-- The purge finds expired refresh tokens and families by index, in bounded batches.
CREATE INDEX refresh_tokens_idle_expires_at ON refresh_tokens (idle_expires_at);
CREATE INDEX refresh_families_absolute_expires_at ON refresh_families (absolute_expires_at);
