// Package meilisink is the Meilisearch sink: each table with a meilisearch section in the mapping
// is written to its index through meilisearch-go, so the docker-compose stack (a real
// Meilisearch) and the tests (the meilitest double) run the same code.
//
// # Setup
//
// Start creates every mapped index with its explicit primary key (Meilisearch's inference
// fails on Appwrite rows, which carry $id, $databaseId and $tableId), or checks the primary
// key of an index that exists, then applies the mapping's settings and waits for those tasks.
// "$id" is always made filterable, so a row can be found by its Appwrite id (the document id
// may be encoded, see EncodeID). An index that cannot be used as mapped (it has another
// primary key, or Meilisearch refuses its settings) affects only its own tables: Start still
// succeeds, the other tables keep flowing, and Apply dead-letters that index's rows with a
// reason naming the fix. The index is checked again by the first Apply after Options.Recheck,
// so once it is fixed new changes flow; the rows dead-lettered meanwhile are replayed from the
// admin API (or re-sent by a backfill). A dead-letter rather than a pause because a pause
// cannot be scoped to one table: the engine pauses a whole sink.
//
// # Document ids
//
// Meilisearch ids are 1 to 511 bytes of [A-Za-z0-9_-]; Appwrite ids may contain '.', and one
// such document fails a whole addition task. EncodeID keeps valid ids unchanged and encodes
// the others injectively and reversibly (see EncodeID); the raw id is always in "$id". Deletes
// use the same function: Meilisearch does not validate ids on delete, so a mismatch would
// fail silently.
//
// # Writes and outcomes
//
// Apply groups a batch by index, replaces whole documents (POST documents with the primary
// key) and deletes by id (delete-batch), in tasks bounded by Options.BatchSize documents and
// Options.BatchBytes of body; a 413 splits a request further. A row whose `where` stops
// matching is deleted. Meilisearch reports most document problems only in the task, later, so
// a batch counts as applied only when its tasks succeeded: one poller watches the tasks of
// every Apply in flight with GET /tasks?uids=… (one request per round, whatever the number of
// workers). A failed task is halved and re-sent until the documents at fault are alone; they
// are returned in a *connector.BatchError with Meilisearch's code and message (dead-lettered),
// and the rest of the batch lands. Server errors (5xx, internal or system task errors),
// timeouts and connection failures wrap connector.ErrSinkUnavailable; 401/403 wrap
// connector.ErrUnauthorized: the engine pauses the sink with backoff and dead-letters nothing.
// SDK retries are disabled so that the engine's backoff is the only one.
//
// A wait cut short (the context Apply was given ended, or polling kept failing) does not lose
// the tasks: the sink remembers, per document, the task carrying its write, and the retry of
// the batch waits on those tasks instead of sending the documents again (a second copy is work
// Meilisearch does twice, behind the first). Only a document whose task did not succeed, or
// whose row changed meanwhile, is sent again; a task uid the server does not know, or that now
// names another task (Meilisearch restarted on a fresh database), counts as lost. What a task
// carries is remembered until some Apply sees it finish, for at most ten minutes untouched.
//
// # Order, and the missing version guard
//
// Meilisearch cannot write conditionally: a document is replaced by whatever comes last. The
// sink therefore relies on the ledger for order. The ledger hands a sink only the newest
// version of a row and never puts a row in two in-flight batches of one sink; Meilisearch runs
// tasks first in, first out, each whole or not at all. So the writes of one row are enqueued
// in version order and applied in that order, across workers and replicas.
//
// Within one process the sink also remembers the versions it wrote lately (a bounded cache)
// and skips an item older than one of them, which makes the Sink contract (an older version
// never overwrites a newer one) hold for direct callers. It orders versions as the ledger
// hands them out, by ($updatedAt, op) and then the ledger's seq, never by content hash: at
// the same $updatedAt the ledger may prefer a row read from the REST API whose hash is the
// smaller, and the index follows the ledger.
//
// The residual window is a delivery lease that lapses while a write is on its way. The engine
// cancels Apply before the lease could lapse (at most 80% of it), but a request Meilisearch
// has fully received is not recalled: if the server (or a proxy in front of it) takes longer
// than the rest of the lease to enqueue it, another replica may meanwhile take the lease,
// write a newer version, and be overtaken by the old one. The ledger still records the newer version as
// applied; the index keeps the older document until the row changes again or a reconcile
// re-sends it. Keep the lease well above Meilisearch's worst request latency.
package meilisink
