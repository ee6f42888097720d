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
    received_at  BIGINT  NOT NULL,
    channel      TEXT    NOT NULL,
    region       TEXT    NOT NULL,
    county       TEXT    NOT NULL,
    township     TEXT    NOT NULL,
    category     TEXT    NOT NULL,
    department   TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    due_at       BIGINT,
    finished_at  BIGINT,
    evaluation   TEXT,
    reopened     BIGINT  NOT NULL,
    overdue      BIGINT  NOT NULL
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
    received     BIGINT  NOT NULL,
    finished     BIGINT  NOT NULL,
    timed        BIGINT  NOT NULL,
    on_time      BIGINT  NOT NULL,
    rated        BIGINT  NOT NULL,
    satisfied    BIGINT  NOT NULL,
    reopened     BIGINT  NOT NULL,
    overdue      BIGINT  NOT NULL,
    handling_ms  BIGINT  NOT NULL,
    h0 BIGINT NOT NULL, h1 BIGINT NOT NULL, h2 BIGINT NOT NULL, h3 BIGINT NOT NULL,
    h4 BIGINT NOT NULL, h5 BIGINT NOT NULL, h6 BIGINT NOT NULL, h7 BIGINT NOT NULL,
    h8 BIGINT NOT NULL, h9 BIGINT NOT NULL, h10 BIGINT NOT NULL, h11 BIGINT NOT NULL,
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
    received     BIGINT  NOT NULL,
    finished     BIGINT  NOT NULL,
    timed        BIGINT  NOT NULL,
    on_time      BIGINT  NOT NULL,
    rated        BIGINT  NOT NULL,
    satisfied    BIGINT  NOT NULL,
    reopened     BIGINT  NOT NULL,
    overdue      BIGINT  NOT NULL,
    handling_ms  BIGINT  NOT NULL,
    h0 BIGINT NOT NULL, h1 BIGINT NOT NULL, h2 BIGINT NOT NULL, h3 BIGINT NOT NULL,
    h4 BIGINT NOT NULL, h5 BIGINT NOT NULL, h6 BIGINT NOT NULL, h7 BIGINT NOT NULL,
    h8 BIGINT NOT NULL, h9 BIGINT NOT NULL, h10 BIGINT NOT NULL, h11 BIGINT NOT NULL,
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
    received  BIGINT  NOT NULL,
    PRIMARY KEY (day, county, township, category, channel)
);
