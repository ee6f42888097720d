-- The centre's screen follows new ticket revisions as they are stored: each
-- revision gets an increasing number, the live feed's event id, so that a
-- screen that reconnects asks for what came after the last one it showed.
-- A sequence hands numbers out when rows are inserted, not when they
-- commit: the feed's reader waits a moment for a gap to fill
-- (`api/live.rs`).
ALTER TABLE ticket_revisions ADD COLUMN id BIGSERIAL;
CREATE UNIQUE INDEX ticket_revisions_by_id ON ticket_revisions (id);
