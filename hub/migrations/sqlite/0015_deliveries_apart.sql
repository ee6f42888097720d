-- What the platform has acknowledged of each ticket, kept apart from the
-- ticket's row: the dispatcher records a delivery for every change, and
-- rewriting the ticket's row for it (its body, a few kilobytes) wrote the
-- body's pages to the log once more per change. A ticket the platform has
-- acknowledged nothing of has no row (revision 0).
CREATE TABLE deliveries (
    ticket_id  TEXT    PRIMARY KEY,
    revision   INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO deliveries (ticket_id, revision)
    SELECT ticket_id, delivered_revision FROM tickets WHERE delivered_revision > 0;
ALTER TABLE tickets DROP COLUMN delivered_revision;
