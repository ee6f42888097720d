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
