DROP TABLE IF EXISTS appwrite_sync.sink_tables;
DROP TABLE IF EXISTS appwrite_sync.quarantine;
DROP TABLE IF EXISTS appwrite_sync.pending;
DROP TABLE IF EXISTS appwrite_sync.ledger;
DROP SEQUENCE IF EXISTS appwrite_sync.version_seq;
