// Package sink defines what a destination of appwrite-sync implements. Sinks are small and
// dumb (Benthos style): the delivery engine in package ledger owns claiming, batching,
// retries, backoff, dead-lettering and metrics. A sink only projects rows through the mapping
// and writes them idempotently, guarded by version, so a replayed or reordered batch can never
// move a row backwards.
package sink

import (
	"context"
	"encoding/json"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// Item is one row to apply: the newest version the ledger holds for (Key, RowID).
type Item struct {
	Key   connector.TableKey
	RowID string
	// Seq identifies the ledger version (monotonic per row); the engine marks it applied.
	Seq     int64
	Version connector.Version
	// Row is the source row as recorded (for a delete: the row as it was before deletion).
	Row json.RawMessage
}

// Sink writes items to one destination.
//
// Apply must be idempotent and version-guarded: applying an item whose version is older
// than what the destination holds is a no-op; applying the same version twice is harmless.
// Deletes of rows the destination never saw succeed. A row whose mapping `where` does not
// match is deleted from the destination (a delete with the item's version).
//
// Errors: nil means every item was applied. A *connector.BatchError means the items it
// lists failed permanently (the engine dead-letters them) and all others were applied. An
// error wrapping connector.ErrSinkUnavailable or connector.ErrUnauthorized pauses the sink
// (nothing applied is assumed, the batch is retried after backoff). Any other error is
// retried with backoff.
type Sink interface {
	// Name is the sink's stable id in the ledger, metrics and status ("postgres", "meilisearch").
	Name() string
	// Handles reports whether this sink receives changes of the table (its mapping has the
	// sink's section; a mapping may name database "*").
	Handles(key connector.TableKey) bool
	// Fingerprint identifies the table's mapping as this sink projects it; "" when the sink
	// does not handle the table. When it changes between runs, the table's rows are
	// re-projected from the ledger (ledger.ReprojectChanged).
	Fingerprint(key connector.TableKey) string
	// Start prepares the destination (DDL, indexes and settings). Idempotent.
	Start(ctx context.Context) error
	Apply(ctx context.Context, items []Item) error
	// Close releases resources; safe to call twice.
	Close() error
}

// Batcher is a sink that chooses how many items one Apply receives (the Meilisearch sink's
// task size, the warehouse's rows per statement). The engine uses it when its SinkConfig
// leaves BatchSize unset.
type Batcher interface {
	BatchSize() int
}
