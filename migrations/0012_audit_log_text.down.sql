-- Back to migration 0010's types. A wrapped body (one jsonb refuses) is valid JSON text, so it
-- converts; the previous version would deliver it as the wrapper.
ALTER TABLE appwrite_sync.audit_log
    ALTER COLUMN events TYPE text[] USING string_to_array(events, ','),
    ALTER COLUMN payload TYPE jsonb USING payload::jsonb;
