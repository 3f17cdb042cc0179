-- The state store keeps an audit entry's events header and body as text (issue #19, cost):
-- nothing parses them on the request's path. The delivery splits the header at commas and
-- renders the body as jsonb's text output (package connector/audit); the warehouse parses it
-- once, into its jsonb column. A body only jsonb refuses is kept and delivered wrapped.
--
-- Entries already recorded convert exactly: array_to_string undoes the string_to_array the
-- insert used to run (no element holds a comma), and a jsonb value's text is what the delivery
-- renders anyway. The ALTER rewrites the state store's audit_log and holds its lock while it
-- does, and audited webhooks wait for it. The table keeps delivered entries for their digests
-- until audit.retention, so on an install that ran 0010 for long with a long retention, run
-- `appwrite-sync migrate` in a quiet moment. The audit log landed only shortly before this
-- change, so such tables are small.
ALTER TABLE appwrite_sync.audit_log
    ALTER COLUMN events TYPE text USING array_to_string(events, ','),
    ALTER COLUMN payload TYPE text USING payload::text;
