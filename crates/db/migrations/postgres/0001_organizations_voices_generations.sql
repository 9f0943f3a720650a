-- Timestamps are unix milliseconds (UTC), as in the SQLite schema.

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL DEFAULT (floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT),
    updated_at BIGINT NOT NULL DEFAULT (floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT)
);

CREATE TABLE voices (
    id TEXT PRIMARY KEY,
    -- NULL for SYSTEM voices, the owning organization for CUSTOM voices.
    org_id TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- The name lowercased by the application (Unicode-aware), for case-insensitive search.
    -- Byte-order collation so that sorting matches SQLite's.
    name_folded TEXT COLLATE "C" NOT NULL,
    description TEXT,
    category TEXT NOT NULL DEFAULT 'GENERAL' CHECK (category IN (
        'AUDIOBOOK', 'CONVERSATIONAL', 'CUSTOMER_SERVICE', 'GENERAL', 'NARRATIVE', 'CHARACTERS',
        'MEDITATION', 'MOTIVATIONAL', 'PODCAST', 'ADVERTISING', 'VOICEOVER', 'CORPORATE'
    )),
    language TEXT NOT NULL DEFAULT 'en-US',
    variant TEXT NOT NULL CHECK (variant IN ('SYSTEM', 'CUSTOM')),
    object_key TEXT,
    created_at BIGINT NOT NULL DEFAULT (floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT),
    updated_at BIGINT NOT NULL DEFAULT (floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT),
    CONSTRAINT voices_owner_matches_variant CHECK (
        (variant = 'SYSTEM' AND org_id IS NULL) OR (variant = 'CUSTOM' AND org_id IS NOT NULL)
    )
);

CREATE INDEX voices_variant_idx ON voices (variant);
CREATE INDEX voices_org_id_idx ON voices (org_id);

CREATE TABLE generations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    voice_id TEXT REFERENCES voices (id) ON DELETE SET NULL,
    text TEXT NOT NULL,
    -- Copied from the voice so that history survives the voice's deletion.
    voice_name TEXT NOT NULL,
    object_key TEXT,
    temperature DOUBLE PRECISION NOT NULL CHECK (temperature > 0 AND temperature <= 2),
    top_p DOUBLE PRECISION NOT NULL CHECK (top_p > 0 AND top_p <= 1),
    top_k INTEGER NOT NULL CHECK (top_k BETWEEN 1 AND 10000),
    repetition_penalty DOUBLE PRECISION NOT NULL CHECK (repetition_penalty BETWEEN 1 AND 2),
    created_at BIGINT NOT NULL DEFAULT (floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT),
    updated_at BIGINT NOT NULL DEFAULT (floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT)
);

-- Leads with org_id, so it also serves every lookup by organization.
CREATE INDEX generations_org_id_created_at_idx ON generations (org_id, created_at);
CREATE INDEX generations_voice_id_idx ON generations (voice_id);
