-- Early-warning alerts (stats/warning.rs): a category rising in a township
-- or county above its own baseline on a day. Raised once per (area,
-- category, day, method), whichever hub looks first; kept with the
-- figures that raised them, for the screen and the monthly analysis.
CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    area           TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    day            TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    count          INTEGER  NOT NULL,
    baseline_mean  REAL    NOT NULL,
    baseline_sd    REAL    NOT NULL,
    statistic      REAL    NOT NULL,
    threshold      REAL    NOT NULL,
    evidence       TEXT    NOT NULL,
    raised_at      INTEGER  NOT NULL,
    UNIQUE (area, category, day, method)
);
CREATE INDEX alerts_by_day ON alerts (day);
