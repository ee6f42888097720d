-- The hub's durable state. Times are epoch milliseconds (UTC) so that one
-- set of queries runs on SQLite and PostgreSQL alike.

-- Every record exactly as received, kept for provenance and replay.
-- The unique key is the exact-dedup rule: the same (system, record id,
-- version) again changes nothing.
CREATE TABLE raw_records (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    system        TEXT    NOT NULL,
    record_id     TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    stored_at     INTEGER NOT NULL,
    content_type  TEXT    NOT NULL,
    encoding      TEXT,
    metadata      TEXT    NOT NULL,
    payload       BLOB    NOT NULL,
    outcome       TEXT    NOT NULL,
    ticket_id     TEXT,
    warnings      TEXT,
    UNIQUE (system, record_id, version)
);

CREATE TABLE tickets (
    ticket_id           TEXT    PRIMARY KEY,
    revision            INTEGER NOT NULL,
    delivered_revision  INTEGER NOT NULL DEFAULT 0,
    status              TEXT    NOT NULL,
    body                TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE ticket_revisions (
    ticket_id      TEXT    NOT NULL REFERENCES tickets (ticket_id),
    revision       INTEGER NOT NULL,
    raw_record_id  INTEGER,
    cause          TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, revision)
);

-- Which ticket a source's record belongs to, and the highest version applied.
CREATE TABLE source_links (
    system     TEXT    NOT NULL,
    record_id  TEXT    NOT NULL,
    ticket_id  TEXT    NOT NULL REFERENCES tickets (ticket_id),
    version    INTEGER NOT NULL,
    linked_at  INTEGER NOT NULL,
    PRIMARY KEY (system, record_id)
);
CREATE INDEX source_links_by_ticket ON source_links (ticket_id);

-- Changes waiting for the platform, written in the same transaction as the
-- ticket revision they carry.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id        TEXT    NOT NULL,
    revision         INTEGER NOT NULL,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    body             TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_until      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL
);
CREATE INDEX outbox_by_ticket ON outbox (ticket_id, id);

CREATE TABLE quarantine (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    raw_record_id  INTEGER NOT NULL REFERENCES raw_records (id),
    system         TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    state          TEXT    NOT NULL DEFAULT 'open',
    created_at     INTEGER NOT NULL,
    resolved_at    INTEGER
);
CREATE INDEX quarantine_by_state ON quarantine (state, id);

-- Changes the platform refused (400/422), with its answer, for a person.
CREATE TABLE dead_letters (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id        TEXT    NOT NULL,
    revision         INTEGER NOT NULL,
    idempotency_key  TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status_code      INTEGER NOT NULL,
    response         TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'open',
    created_at       INTEGER NOT NULL,
    resolved_at      INTEGER
);
CREATE INDEX dead_letters_by_state ON dead_letters (state, id);

-- Positions in the sources that are read by cursor (feeds), committed in the
-- same transaction as the records they cover.
CREATE TABLE cursors (
    name        TEXT    PRIMARY KEY,
    value       TEXT    NOT NULL,
    etag        TEXT,
    updated_at  INTEGER NOT NULL
);
