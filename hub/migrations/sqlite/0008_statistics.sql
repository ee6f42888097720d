-- The figures of the centre's screen and monthly analysis, kept as events
-- happen so that a request reads aggregates, never every ticket.
--
-- ticket_facts: what the figures count of each ticket as it now stands
-- (its cohort month and day in Beijing time, where it is, who handles it,
-- whether and when it was finished, on time or not, how it was rated).
-- A change to a ticket moves its contribution from the cell it was in to
-- the cell it is in now, in the same transaction as the change.
CREATE TABLE ticket_facts (
    ticket_id    TEXT    PRIMARY KEY,
    month        TEXT    NOT NULL,
    day          TEXT    NOT NULL,
    received_at  INTEGER  NOT NULL,
    channel      TEXT    NOT NULL,
    region       TEXT    NOT NULL,
    county       TEXT    NOT NULL,
    township     TEXT    NOT NULL,
    category     TEXT    NOT NULL,
    department   TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    due_at       INTEGER,
    finished_at  INTEGER,
    evaluation   TEXT,
    reopened     INTEGER  NOT NULL,
    overdue      INTEGER  NOT NULL
);
CREATE INDEX ticket_facts_by_time ON ticket_facts (received_at);
CREATE INDEX ticket_facts_by_region ON ticket_facts (region, received_at);

-- Sums per month (the ticket's cohort: when it was received) and place,
-- category, channel, department. h0..h11 count finished tickets by
-- handling time (up to 1, 4, 8, 24, 48, 72, 120, 168, 240, 360, 720 hours,
-- more), for the p90.
CREATE TABLE stats_cells (
    month        TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    county       TEXT    NOT NULL,
    township     TEXT    NOT NULL,
    category     TEXT    NOT NULL,
    department   TEXT    NOT NULL,
    received     INTEGER  NOT NULL,
    finished     INTEGER  NOT NULL,
    timed        INTEGER  NOT NULL,
    on_time      INTEGER  NOT NULL,
    rated        INTEGER  NOT NULL,
    satisfied    INTEGER  NOT NULL,
    reopened     INTEGER  NOT NULL,
    overdue      INTEGER  NOT NULL,
    handling_ms  INTEGER  NOT NULL,
    h0 INTEGER NOT NULL, h1 INTEGER NOT NULL, h2 INTEGER NOT NULL, h3 INTEGER NOT NULL,
    h4 INTEGER NOT NULL, h5 INTEGER NOT NULL, h6 INTEGER NOT NULL, h7 INTEGER NOT NULL,
    h8 INTEGER NOT NULL, h9 INTEGER NOT NULL, h10 INTEGER NOT NULL, h11 INTEGER NOT NULL,
    PRIMARY KEY (month, channel, county, township, category, department)
);

-- The same sums rolled up one dimension at a time, for the whole city
-- (scope '') and for each county (scope = its 6 digits): a year's figures
-- by any one dimension read at most a few hundred rows. `dim` is
-- channel, county, township, category, department or total (value '').
-- A township's figures are read from stats_cells, a few rows per month.
CREATE TABLE stats_rollups (
    month        TEXT    NOT NULL,
    scope        TEXT    NOT NULL,
    dim          TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    received     INTEGER  NOT NULL,
    finished     INTEGER  NOT NULL,
    timed        INTEGER  NOT NULL,
    on_time      INTEGER  NOT NULL,
    rated        INTEGER  NOT NULL,
    satisfied    INTEGER  NOT NULL,
    reopened     INTEGER  NOT NULL,
    overdue      INTEGER  NOT NULL,
    handling_ms  INTEGER  NOT NULL,
    h0 INTEGER NOT NULL, h1 INTEGER NOT NULL, h2 INTEGER NOT NULL, h3 INTEGER NOT NULL,
    h4 INTEGER NOT NULL, h5 INTEGER NOT NULL, h6 INTEGER NOT NULL, h7 INTEGER NOT NULL,
    h8 INTEGER NOT NULL, h9 INTEGER NOT NULL, h10 INTEGER NOT NULL, h11 INTEGER NOT NULL,
    PRIMARY KEY (scope, dim, month, value)
);

-- Matters received per day, place, category and channel: today's counts
-- and the early warning's daily series.
CREATE TABLE stats_daily (
    day       TEXT    NOT NULL,
    county    TEXT    NOT NULL,
    township  TEXT    NOT NULL,
    category  TEXT    NOT NULL,
    channel   TEXT    NOT NULL,
    received  INTEGER  NOT NULL,
    PRIMARY KEY (day, county, township, category, channel)
);
