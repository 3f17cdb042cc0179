DROP TABLE IF EXISTS appwrite_sync.audit_delivery;
DROP TABLE IF EXISTS appwrite_sync.audit_log;
DROP SEQUENCE IF EXISTS appwrite_sync.audit_seq;
