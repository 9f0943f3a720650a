-- One-time password reset links an operator hands out (`resonance users reset-password`).
CREATE TABLE password_resets (
    -- SHA-256 of the link's token, hex; the token itself is never stored.
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX password_resets_user_id_idx ON password_resets (user_id);
