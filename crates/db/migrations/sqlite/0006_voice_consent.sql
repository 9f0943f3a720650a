-- Who confirmed, when cloning a voice, that its speaker agreed to it, and when (unix ms).
-- NULL for system voices and for voices cloned before consent was recorded. No foreign
-- key: the record outlives the account or API key that made it.
ALTER TABLE voices ADD COLUMN consent_by TEXT;
ALTER TABLE voices ADD COLUMN consent_at INTEGER;
