-- Clients made through the admin API live here beside the config's (source 'api'), and a
-- client may hold several secrets, each with an optional end (JSON list).
ALTER TABLE clients ADD COLUMN source TEXT NOT NULL DEFAULT 'config';
ALTER TABLE clients ADD COLUMN secrets TEXT NOT NULL DEFAULT '[]';
