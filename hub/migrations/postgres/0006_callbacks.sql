-- The way back: the platform's callbacks and each ticket's history.

-- Every verified callback, as received, before it is answered: the same
-- X-Event-Id again finds its row and changes nothing. `outcome` is what
-- applying it did (applied, stale, held); a held one (unknown ticket or
-- status, unreadable body) waits for a person in state 'open'.
CREATE TABLE callbacks (
    id           BIGSERIAL PRIMARY KEY,
    event_id     TEXT    NOT NULL UNIQUE,
    -- SHA-256 of what was signed ({X-Timestamp}.{body}): the same signed
    -- bytes under another event id are a replay, not a new event.
    digest       TEXT    UNIQUE,
    ticket_id    TEXT,
    status       TEXT,
    at           BIGINT,
    received_at  BIGINT NOT NULL,
    body         BYTEA    NOT NULL,
    outcome      TEXT    NOT NULL,
    reason       TEXT,
    state        TEXT    NOT NULL
);
CREATE INDEX callbacks_by_state ON callbacks (state, id);

-- What happened to a ticket, in the order the hub learned it: callbacks,
-- merges, deliveries back to its origins. One readable line each, without
-- personal data.
CREATE TABLE ticket_events (
    id           BIGSERIAL PRIMARY KEY,
    ticket_id    TEXT    NOT NULL,
    at           BIGINT  NOT NULL,
    recorded_at  BIGINT  NOT NULL,
    kind         TEXT    NOT NULL,
    detail       TEXT    NOT NULL
);
CREATE INDEX ticket_events_by_ticket ON ticket_events (ticket_id, id);

-- The platform's side of a ticket's state (status, department, deadline,
-- evaluation, the last event's time), as JSON; NULL until its first callback.
ALTER TABLE tickets ADD COLUMN handling TEXT;

-- Status changes on their way back to the agencies that brought each
-- matter in (hotline feedback, terminal notifications, court outcomes),
-- written in the same transaction as the callback that caused them and
-- deleted once the agency has taken them. 'dead': refused for good, kept
-- with the answer for a person.
CREATE TABLE feedback_outbox (
    id               BIGSERIAL PRIMARY KEY,
    destination      TEXT    NOT NULL,
    ticket_id        TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    message_id       TEXT    NOT NULL UNIQUE,
    address          TEXT    NOT NULL,
    body             BYTEA    NOT NULL,
    content_type     TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT ,
    last_error       TEXT,
    state            TEXT    NOT NULL DEFAULT 'pending',
    created_at       BIGINT  NOT NULL
);
CREATE INDEX feedback_by_destination ON feedback_outbox (destination, state, id);

-- Each open ticket's deadline: when its clock started, when it is due, and
-- whether the reminder (at a share of the time, 80% by default) and the
-- overdue mark were given. Set once each, by whichever hub gets there
-- first (UPDATE … WHERE reminded_at IS NULL); a new deadline starts over.
CREATE TABLE deadlines (
    ticket_id    TEXT    PRIMARY KEY,
    started_at   BIGINT  NOT NULL,
    due_at       BIGINT  NOT NULL,
    closed       BIGINT  NOT NULL DEFAULT 0,
    reminded_at  BIGINT ,
    overdue_at   BIGINT 
);
CREATE INDEX deadlines_open ON deadlines (closed, due_at);

-- Court cases that reached AGREED, waiting for their legal document the
-- same day (当天出具法律文书): when the hub first saw them agreed, when a
-- document came, when the alarm was raised (once, by one hub).
CREATE TABLE court_documents (
    ticket_id      TEXT    PRIMARY KEY,
    case_no        TEXT    NOT NULL,
    agreed_at      BIGINT  NOT NULL,
    documented_at  BIGINT ,
    alarmed_at     BIGINT 
);
