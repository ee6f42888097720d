-- The centre's screen follows new ticket revisions as they are stored: each
-- revision gets an increasing number, the live feed's event id, so that a
-- screen that reconnects asks for what came after the last one it showed.
-- SQLite numbers a row in its (single) writer's transaction, so numbers
-- come in commit order; a trigger gives the next one, as every insert
-- (intake's multi-row ones, a merge's) names its columns and leaves it out.
ALTER TABLE ticket_revisions ADD COLUMN id INTEGER;
UPDATE ticket_revisions SET id = rowid;
CREATE UNIQUE INDEX ticket_revisions_by_id ON ticket_revisions (id);
CREATE TRIGGER ticket_revisions_numbered AFTER INSERT ON ticket_revisions WHEN NEW.id IS NULL
BEGIN
    UPDATE ticket_revisions SET id = (SELECT COALESCE(MAX(id), 0) + 1 FROM ticket_revisions)
     WHERE rowid = NEW.rowid;
END;
