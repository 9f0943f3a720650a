-- SYSTEM voices are shared by every organization, so their names are unique: two servers
-- starting on one new database install the built-in voice once, the second insert
-- failing on this index. Duplicates installed before it are removed, keeping the oldest
-- (generations made with a removed one keep its name and lose the link; its audio is
-- removed by `resonance storage reconcile`).
DELETE FROM voices
WHERE variant = 'SYSTEM' AND EXISTS (
    SELECT 1 FROM voices older
    WHERE older.variant = 'SYSTEM'
    AND older.name_folded = voices.name_folded
    AND (older.created_at < voices.created_at
        OR (older.created_at = voices.created_at AND older.id < voices.id))
);

CREATE UNIQUE INDEX voices_system_name_idx ON voices (name_folded) WHERE variant = 'SYSTEM';
