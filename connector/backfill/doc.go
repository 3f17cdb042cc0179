// Package backfill reads Appwrite tables through the REST API into the ledger: the first load
// of an existing project, and the reconciliation that repairs what webhooks lose (Appwrite
// never retries a delivery, disables a webhook after 10 failures, reports only the first 100
// rows of a bulk update or delete, and nothing for imports).
//
// A job has a mode:
//
//   - full scans every row of a table by keyset on $sequence and records each page with the
//     ledger's version guard, so it is safe while webhooks flow: an older row read from the
//     API never overwrites a newer webhook. At the end, rows the ledger holds as live that
//     the scan did not see, and that nothing recorded or changed since the scan began, are
//     recorded as deletes (with their stored version, so any newer version still wins). What
//     the scan saw is kept in the state store, not in memory: a row it advanced carries a
//     recorded_at after the scan began, the ids of the others go to backfill_seen, an unlogged
//     table (a repeated backfill of unchanged rows writes no WAL for them); a job that finds
//     fewer there than it stored (the state store crashed or failed over) scans again. A job that
//     would delete more than half of the table's live rows fails instead, unless started with
//     allow_mass_delete (massDelete): a key that cannot see the rows reads few or none.
//   - incremental scans rows with $updatedAt at or after the table's watermark minus a skew
//     window. The watermark advances, when a job succeeds, to the greatest $updatedAt it
//     recorded but never past the moment its scan began: a row updated during the scan may
//     sit behind the keyset already and must be looked at again next time.
//
// Jobs live in the state store (migrations/0002_backfill.up.sql). One job per table at a time
// is enforced there by a partial unique index. A running job holds a lease that its
// heartbeat renews; each page moves its checkpoint (the last $sequence recorded). A process
// that stops releases its jobs; one that dies leaves them to be taken over when the lease
// lapses. Either way the job resumes after its checkpoint. Cancelling marks the job in the
// store and stops the scan at the next heartbeat (at once when it runs in this process).
//
// Manager implements admin.Backfill. Scheduler starts jobs periodically; Probe watches the
// webhooks' health on Appwrite 1.9+, can enable a disabled one again, and reports when one
// comes back so its tables are reconciled from when it was disabled (EnqueueSince, which the
// serve command also uses to repair changes it had to refuse).
package backfill
