DROP TABLE IF EXISTS appwrite_sync.history_cursor;
DROP TABLE IF EXISTS appwrite_sync.history;
DROP SEQUENCE IF EXISTS appwrite_sync.history_seq;
