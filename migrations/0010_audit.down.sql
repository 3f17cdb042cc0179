DROP TABLE IF EXISTS appwrite_sync.audit_delivery;
DROP TABLE IF EXISTS appwrite_sync.audit_head;
DROP TABLE IF EXISTS appwrite_sync.audit_log;
