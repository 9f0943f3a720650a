-- The order generations were inserted in, to list those made in the same millisecond
-- in that order (history sorts by created_at, then this).
ALTER TABLE generations ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
DROP INDEX generations_org_id_created_at_idx;
CREATE INDEX generations_org_id_created_at_idx ON generations (org_id, created_at, seq);
