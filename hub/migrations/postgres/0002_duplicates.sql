-- Cross-channel duplicate detection (hub/src/dedup/, hub/src/store/matching.rs).

-- One fingerprint per source record that opened or joined a ticket: what
-- candidate search compares. `seq` is handed out under the row lock of
-- match_clock, so it grows in commit order and every hub can read what it
-- has not seen yet with `seq > last seen`. A record moved to another ticket
-- (confirmed, unmerged) gets a new row; the newest row of a record counts.
CREATE TABLE match_prints (
    seq          BIGINT  PRIMARY KEY,
    ticket_id    TEXT    NOT NULL,
    system       TEXT    NOT NULL,
    record_id    TEXT    NOT NULL,
    occurred     BIGINT  NOT NULL,
    fingerprint  TEXT    NOT NULL
);
CREATE INDEX match_prints_by_ticket ON match_prints (ticket_id);
CREATE INDEX match_prints_by_record ON match_prints (system, record_id);

-- One row. Every transaction that decides about new records updates it
-- first: the decisions of all hubs on one database happen one after the
-- other, so two records of one matter cannot both open a ticket.
CREATE TABLE match_clock (
    id   INTEGER PRIMARY KEY,
    seq  BIGINT  NOT NULL
);
INSERT INTO match_clock (id, seq) VALUES (1, 0);

-- Every decision that found a likely duplicate, with its score and reasons:
-- merged (the record joined the other ticket), possible (a new ticket, for a
-- person to confirm or reject), confirmed, rejected, unmerged.
CREATE TABLE duplicate_links (
    id          BIGSERIAL PRIMARY KEY,
    ticket_id   TEXT    NOT NULL,
    other_id    TEXT    NOT NULL,
    system      TEXT    NOT NULL,
    record_id   TEXT    NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    reasons     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    decided_at  BIGINT,
    note        TEXT
);
CREATE INDEX duplicate_links_by_state ON duplicate_links (state, id);
CREATE INDEX duplicate_links_by_ticket ON duplicate_links (ticket_id);
CREATE INDEX duplicate_links_by_other ON duplicate_links (other_id);
