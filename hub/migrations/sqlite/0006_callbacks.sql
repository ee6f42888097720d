-- The way back: the platform's callbacks and each ticket's history.

-- Every verified callback, as received, before it is answered: the same
-- X-Event-Id again finds its row and changes nothing. `outcome` is what
-- applying it did (applied, stale, held); a held one (unknown ticket or
-- status, unreadable body) waits for a person in state 'open'.
CREATE TABLE callbacks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    ticket_id    TEXT,
    status       TEXT,
    at           INTEGER,
    received_at  INTEGER NOT NULL,
    body         BLOB    NOT NULL,
    outcome      TEXT    NOT NULL,
    reason       TEXT,
    state        TEXT    NOT NULL
);
CREATE INDEX callbacks_by_state ON callbacks (state, id);

-- What happened to a ticket, in the order the hub learned it: callbacks,
-- merges, deliveries back to its origins. One readable line each, without
-- personal data.
CREATE TABLE ticket_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id    TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    recorded_at  INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    detail       TEXT    NOT NULL
);
CREATE INDEX ticket_events_by_ticket ON ticket_events (ticket_id, id);

-- The platform's side of a ticket's state (status, department, deadline,
-- evaluation, the last event's time), as JSON; NULL until its first callback.
ALTER TABLE tickets ADD COLUMN handling TEXT;
