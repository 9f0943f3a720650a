-- Accounts, memberships, sessions, invites and API keys. Timestamps are unix milliseconds.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    -- Lowercased by the application, so uniqueness is case-insensitive.
    email TEXT NOT NULL UNIQUE,
    -- Argon2id, PHC string.
    password_hash TEXT NOT NULL,
    -- The first account on a fresh instance; manages system voices.
    is_operator BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);

-- At most one operator, even when the first two sign-ups race.
CREATE UNIQUE INDEX users_one_operator_idx ON users (is_operator) WHERE is_operator;

CREATE TABLE memberships (
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

CREATE INDEX memberships_user_id_idx ON memberships (user_id);

CREATE TABLE sessions (
    -- SHA-256 of the cookie's token, hex; the token itself is never stored.
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    active_org_id TEXT REFERENCES organizations (id) ON DELETE SET NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- SHA-256 of the link's token, hex.
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    accepted_at BIGINT
);

CREATE INDEX invites_org_id_idx ON invites (org_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- The visible part of the key (`rsn_<prefix>_...`), to find it and tell keys apart.
    prefix TEXT NOT NULL UNIQUE,
    -- SHA-256 of the whole key, hex.
    key_hash TEXT NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

CREATE INDEX api_keys_org_id_idx ON api_keys (org_id);
