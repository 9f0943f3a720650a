-- Plans that limit what an organization may consume, and the outbox that forwards usage
-- to the billing provider. Times are unix ms.

-- An organization's own plan; it replaces the instance default plan as a whole.
-- A NULL limit is unlimited.
CREATE TABLE org_plans (
    org_id TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Characters spoken per calendar month (UTC).
    characters_per_month INTEGER CHECK (characters_per_month >= 0),
    -- Custom voices the organization may keep.
    voice_slots INTEGER CHECK (voice_slots >= 0),
    -- Generations queued or running at once.
    max_concurrent_jobs INTEGER CHECK (max_concurrent_jobs >= 0),
    updated_at INTEGER NOT NULL
) STRICT;

-- Voice creations are charged once per voice. No foreign key: usage outlives the voice.
ALTER TABLE usage_events ADD COLUMN voice_id TEXT;
CREATE UNIQUE INDEX usage_events_voice_id_idx ON usage_events (voice_id);

-- Usage events not yet delivered to the billing provider. Each row is written in the same
-- transaction as its usage event and deleted once the provider has accepted the event.
CREATE TABLE usage_outbox (
    usage_event_id INTEGER PRIMARY KEY NOT NULL
        REFERENCES usage_events (id) ON DELETE CASCADE,
    -- Failed deliveries so far.
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Not delivered before this time (backoff after a failure).
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT
) STRICT;

CREATE INDEX usage_outbox_next_attempt_at_idx ON usage_outbox (next_attempt_at);

-- Usage recorded before the outbox existed is delivered too.
INSERT INTO usage_outbox (usage_event_id, next_attempt_at) SELECT id, created_at FROM usage_events;
