-- Fingerprints as their bytes (Fingerprint::to_bytes) rather than hex text:
-- half the row, in the transaction that decides about a batch, and no hex
-- to write or parse. Rows written before keep their hex in `fingerprint`;
-- new rows leave it empty (hub/src/store/matching.rs reads either).
ALTER TABLE match_prints ADD COLUMN print BLOB;
