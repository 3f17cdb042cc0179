// Package meilitest is an in-process Meilisearch HTTP double for tests and demos. It is a test
// tool, never a runtime default: production code talks to Meilisearch through meilisearch-go,
// and this package only exists because no Meilisearch binary can be installed where the tests
// run.
//
// The double speaks the subset of the HTTP API a sink uses, faithfully: status codes, error
// bodies ({message, code, type, link}) with Meilisearch's own codes, the asynchronous task
// lifecycle (enqueued → processing → succeeded | failed | canceled) driven by a single FIFO
// worker, document id validation, primary-key resolution and inference, filterable-attribute
// checks on delete-by-filter, the payload limit, gzip/deflate/br request and response bodies
// and the master key.
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
// outcome per task is the same, since Meilisearch also fails tasks individually); search,
// API keys other than the master key, dumps, snapshots, swaps and geo filters are not
// implemented; a task that is already processing cannot be canceled.
package meilitest
