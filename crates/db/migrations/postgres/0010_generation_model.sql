-- The speech model a generation is spoken with (`chatterbox-turbo`, `chatterbox-nano`).
ALTER TABLE generations ADD COLUMN model TEXT NOT NULL DEFAULT 'chatterbox-turbo';
