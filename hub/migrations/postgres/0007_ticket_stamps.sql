-- A ticket row's write count. Intake reads a ticket, plans its next
-- revision and writes it back; on PostgreSQL another hub may apply a
-- platform callback to the same row in between. Intake writes only where
-- the stamp is still the one it read, so such a change is never written
-- over: the batch is planned again on what is there now.
ALTER TABLE tickets ADD COLUMN stamp BIGINT NOT NULL DEFAULT 0;
