-- The index on match_prints.occurred cost every deciding transaction a
-- B-tree insert per fingerprint on nearly every leaf (records of a batch are
-- dated far apart), most of what the fingerprints cost to write. In its
-- place one row per written batch of fingerprints: its sequence numbers
-- (first..last, the table's own key) and the range of their `occurred`.
-- Loading the window and deleting expired rows find the batches here, then
-- their rows by `seq`, and check each row's `occurred` (hub/src/store/matching.rs).
CREATE TABLE match_print_spans (
    first_seq     BIGINT   PRIMARY KEY,
    last_seq      BIGINT   NOT NULL,
    min_occurred  BIGINT   NOT NULL,
    max_occurred  BIGINT   NOT NULL
);
INSERT INTO match_print_spans (first_seq, last_seq, min_occurred, max_occurred)
    SELECT MIN(seq), MAX(seq), MIN(occurred), MAX(occurred) FROM match_prints GROUP BY seq / 256;
DROP INDEX match_prints_by_occurred;

-- The same for the index on (system, record_id): the hotline's order
-- numbers hold the date, so its inserts landed all over it too. It only
-- found a record's fingerprint for an un-merge or a confirmation; the
-- record's source link, found by its key anyway, now keeps the number of
-- its fingerprint row (the newest; every row of a record holds the same).
ALTER TABLE source_links ADD COLUMN print_seq BIGINT;
UPDATE source_links SET print_seq = (
    SELECT MAX(p.seq) FROM match_prints p
     WHERE p.system = source_links.system AND p.record_id = source_links.record_id
);
DROP INDEX match_prints_by_record;
