-- The match index loads only the fingerprints within the rules' reach of the
-- newest one, and rows past the retention are deleted in batches
-- (hub/src/store/matching.rs): both find them by time. One B-tree insert per
-- record, at the end of the index (records arrive roughly in time order).
CREATE INDEX match_prints_by_occurred ON match_prints (occurred);
