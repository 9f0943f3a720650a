-- Generations become durable jobs: workers claim queued rows, hold a lease they renew
-- with heartbeats, and the row ends succeeded, failed or cancelled. Times are unix ms.

ALTER TABLE generations ADD COLUMN status TEXT NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE generations ADD COLUMN progress INTEGER NOT NULL DEFAULT 0
    CHECK (progress BETWEEN 0 AND 100);
ALTER TABLE generations ADD COLUMN seed INTEGER CHECK (seed BETWEEN 0 AND 4294967295);
-- Why a failed generation failed, in words for the user.
ALTER TABLE generations ADD COLUMN failure_reason TEXT;
-- How many times a worker has claimed the job.
ALTER TABLE generations ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- The worker running the job and until when its claim holds without a heartbeat.
ALTER TABLE generations ADD COLUMN lease_owner TEXT;
ALTER TABLE generations ADD COLUMN lease_expires_at INTEGER;
ALTER TABLE generations ADD COLUMN finished_at INTEGER;

-- Rows from before jobs existed that already have audio are done.
UPDATE generations SET status = 'succeeded', progress = 100 WHERE object_key IS NOT NULL;

CREATE INDEX generations_status_created_at_idx ON generations (status, created_at);

-- What organizations consumed, for billing. A generation is charged at most once.
CREATE TABLE usage_events (
    id INTEGER PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('tts_generation', 'voice_creation')),
    -- Characters for tts_generation, voices for voice_creation.
    quantity INTEGER NOT NULL CHECK (quantity >= 0),
    -- No foreign key: usage outlives a deleted generation.
    generation_id TEXT UNIQUE,
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
) STRICT;

CREATE INDEX usage_events_org_id_created_at_idx ON usage_events (org_id, created_at);
