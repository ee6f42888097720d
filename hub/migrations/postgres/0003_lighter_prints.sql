-- Nothing looks fingerprints up by ticket (a ticket's sources come from the
-- in-memory index, moves from source_links): the index only cost every
-- deciding transaction a B-tree insert per record.
DROP INDEX match_prints_by_ticket;
