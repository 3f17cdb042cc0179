DROP TABLE IF EXISTS appwrite_sync.ledger_links_spec;
DROP TABLE IF EXISTS appwrite_sync.ledger_fanout;
DROP TABLE IF EXISTS appwrite_sync.ledger_links;
