-- The order generations were inserted in, to list those made in the same millisecond
-- in that order (history sorts by created_at, then this): SQLite's rowid, which every
-- index already ends with, so this backend needs no new column. A statement that
-- changes nothing keeps the two backends' migrations one to one.
SELECT 1;
