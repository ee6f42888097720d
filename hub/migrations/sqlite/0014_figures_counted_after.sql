-- The statistics follow intake's changes a moment later instead of inside
-- intake's transaction. A row here says a ticket changed and is not yet
-- counted (due_at: the earliest such change, epoch ms): intake inserts it
-- in the transaction that changes the ticket, and the hub counts the
-- tickets listed (oldest first) in a transaction of its own, deleting
-- their rows there. Counting is a move from the stored facts to the
-- ticket as it stands, so a ticket counted twice, or by a callback
-- meanwhile, moves nothing more. An older hub would not list its changes:
-- it refuses this database, which has a migration it does not know.
CREATE TABLE stats_due (
    ticket_id  TEXT    PRIMARY KEY,
    due_at     INTEGER NOT NULL,
    -- When a change left it finished (resolved or closed), if none has
    -- unfinished it since: its finish is dated by that change.
    finished_at  INTEGER
);
CREATE INDEX stats_due_by_time ON stats_due (due_at);
