-- The hub's durable state. Times are epoch milliseconds (UTC) so that one
-- set of queries runs on SQLite and PostgreSQL alike.

-- Every record exactly as received, kept for provenance and replay.
-- The unique key is the exact-dedup rule: the same (system, record id,
-- version) again changes nothing.
CREATE TABLE raw_records (
    id            BIGSERIAL PRIMARY KEY,
    system        TEXT    NOT NULL,
    record_id     TEXT    NOT NULL,
    version       BIGINT  NOT NULL,
    received_at   BIGINT  NOT NULL,
    stored_at     BIGINT  NOT NULL,
    content_type  TEXT    NOT NULL,
    encoding      TEXT,
    metadata      TEXT    NOT NULL,
    payload       BYTEA   NOT NULL,
    outcome       TEXT    NOT NULL,
    ticket_id     TEXT,
    warnings      TEXT,
    UNIQUE (system, record_id, version)
);

CREATE TABLE tickets (
    ticket_id           TEXT    PRIMARY KEY,
    revision            BIGINT  NOT NULL,
    delivered_revision  BIGINT  NOT NULL DEFAULT 0,
    status              TEXT    NOT NULL,
    body                TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL
);

CREATE TABLE ticket_revisions (
    ticket_id      TEXT    NOT NULL REFERENCES tickets (ticket_id),
    revision       BIGINT  NOT NULL,
    raw_record_id  BIGINT,
    cause          TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    PRIMARY KEY (ticket_id, revision)
);

-- Which ticket a source's record belongs to, and the highest version applied.
CREATE TABLE source_links (
    system     TEXT    NOT NULL,
    record_id  TEXT    NOT NULL,
    ticket_id  TEXT    NOT NULL REFERENCES tickets (ticket_id),
    version    BIGINT  NOT NULL,
    linked_at  BIGINT  NOT NULL,
    PRIMARY KEY (system, record_id)
);
CREATE INDEX source_links_by_ticket ON source_links (ticket_id);

-- Changes waiting for the platform, written in the same transaction as the
-- ticket revision they carry.
CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    ticket_id        TEXT    NOT NULL,
    revision         BIGINT  NOT NULL,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    body             TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL
);
CREATE INDEX outbox_by_ticket ON outbox (ticket_id, id);

CREATE TABLE quarantine (
    id             BIGSERIAL PRIMARY KEY,
    raw_record_id  BIGINT  NOT NULL REFERENCES raw_records (id),
    system         TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    state          TEXT    NOT NULL DEFAULT 'open',
    created_at     BIGINT  NOT NULL,
    resolved_at    BIGINT
);
CREATE INDEX quarantine_by_state ON quarantine (state, id);

-- Changes the platform refused (400/422), with its answer, for a person.
CREATE TABLE dead_letters (
    id               BIGSERIAL PRIMARY KEY,
    ticket_id        TEXT    NOT NULL,
    revision         BIGINT  NOT NULL,
    idempotency_key  TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status_code      BIGINT  NOT NULL,
    response         TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'open',
    created_at       BIGINT  NOT NULL,
    resolved_at      BIGINT
);
CREATE INDEX dead_letters_by_state ON dead_letters (state, id);

-- Positions in the sources that are read by cursor (feeds), committed in the
-- same transaction as the records they cover.
CREATE TABLE cursors (
    name        TEXT    PRIMARY KEY,
    value       TEXT    NOT NULL,
    etag        TEXT,
    updated_at  BIGINT  NOT NULL
);
