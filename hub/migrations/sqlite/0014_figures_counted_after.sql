-- The statistics follow intake's changes a moment later instead of inside
-- intake's transaction. stats_due is when a ticket changed and was not
-- yet counted (epoch ms, the earliest such change), NULL once it is:
-- intake sets it in the same write as the ticket, and the hub counts what
-- it marks (oldest first) in a transaction of its own, clearing the mark
-- there. Counting
-- is a move from the stored facts to the ticket as it stands, so a
-- ticket counted twice, or by a callback meanwhile, moves nothing more.
-- An older hub would leave the marks and miss its own changes: it
-- refuses this database, which has a migration it does not know.
ALTER TABLE tickets ADD COLUMN stats_due INTEGER;
CREATE INDEX tickets_stats_due ON tickets (stats_due) WHERE stats_due IS NOT NULL;
