// Package meilitest is an in-process Meilisearch HTTP double for tests and demos. It is a test
// tool, never a runtime default: production code talks to Meilisearch through meilisearch-go,
// and this package only exists because no Meilisearch binary can be installed where the tests
// run.
//
// The double speaks the subset of the HTTP API the Meilisearch sink and the demo use, faithfully:
// status codes, error bodies ({message, code, type, link}) with Meilisearch's own codes, the
// asynchronous task lifecycle (enqueued → processing → succeeded | failed | canceled) driven by
// a single FIFO worker, index creation and primary-key updates, settings (validated on sight),
// document additions with id validation and primary-key resolution and inference, deletes by
// id (delete-batch), task polling and cancelation, the payload limit and the master key.
//
// Start it like httptest:
//
//	srv := meilitest.New(meilitest.Options{MasterKey: "key"})
//	defer srv.Close()
//	client := meilisearch.New(srv.URL, meilisearch.WithAPIKey("key"))
//
// Test controls (Pause, Step, InjectHTTPError, DropConnections, FailNextTask, …) reproduce the
// situations a real server produces rarely, and inspection methods (Documents, Tasks,
// Counters, …) read the stored state without going through HTTP.
//
// Deliberate differences from a real server: every task is its own batch (the observable
// outcome per task is the same, since Meilisearch also fails tasks individually); what the
// sink never calls is not implemented: search, reading documents over HTTP (use Documents),
// PUT (merge) additions, NDJSON and CSV bodies, deletes by filter or of all documents,
// compressed bodies (a Content-Encoding is refused with 400 bad_request), API keys other than
// the master key, dumps, snapshots and swaps; a task that is already processing cannot be
// canceled.
package meilitest
