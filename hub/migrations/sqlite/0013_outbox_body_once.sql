-- Outbox rows queued from now on carry an empty body: the change's body is
-- its revision's (ticket_revisions.body), read when the change is leased,
-- so each revision is written once. Rows queued before keep their own body
-- and are sent as they are. No table changes; this migration is here so
-- that an older hub, which would send the empty bodies, refuses the
-- database (a migration it does not know) instead of running on it.
SELECT 1;
