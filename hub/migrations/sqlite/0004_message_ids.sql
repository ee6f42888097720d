-- Sources whose messages carry ids of their own (a terminal's msgId): such a
-- raw record is keyed on (system, message id, version) and `about` names the
-- record (the event) whose ticket it belongs to; NULL for every other source.
ALTER TABLE raw_records ADD COLUMN about TEXT;
CREATE INDEX raw_records_by_about ON raw_records (system, about) WHERE about IS NOT NULL;

-- Whole records and partial updates of one source record each keep their own
-- order: `whole_version` is the newest whole record applied (NULL while only
-- partial updates have come), `patch_version` the newest partial update and
-- `patched` the fields partial updates have set. `version` stays the newest
-- of either. A link made before counts as both at its version: what is
-- older than it stays stale, as it did.
ALTER TABLE source_links ADD COLUMN whole_version INTEGER;
ALTER TABLE source_links ADD COLUMN patch_version INTEGER;
ALTER TABLE source_links ADD COLUMN patched TEXT;
UPDATE source_links SET whole_version = version, patch_version = version;
