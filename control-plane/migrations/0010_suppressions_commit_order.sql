-- Migration 0010: the transaction that inserted each suppression, so that the gateway's recipient
-- index can read suppressions in commit order instead of id order. Ids are handed out when a row is
-- inserted, not when its transaction commits: a bulk import that began earlier and commits late has
-- low ids behind ones the index already read. A snapshot's xmin is the oldest transaction still
-- running when it was taken, so every row committed since the last read has created_xid >= the last
-- read's xmin (see app/submission/recipient-index.ts).
ALTER TABLE suppressions ADD COLUMN created_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX suppressions_created_xid_idx ON suppressions (created_xid);
