package meilisink

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/internal/defaults"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// Defaults of Options.
const (
	// BatchSizeDefault is the most documents (or ids to delete) one task carries.
	BatchSizeDefault = 10000
	// BatchBytesDefault is the largest request body, in bytes: a tenth of Meilisearch's default
	// 100 MB payload limit, so a batch stays well under it even on a server with a lower limit.
	BatchBytesDefault = 10 << 20
	// TimeoutDefault bounds each HTTP request to Meilisearch.
	TimeoutDefault = 30 * time.Second
	// RecheckDefault is how long a table whose index could not be set up waits before the
	// next Apply checks it again.
	RecheckDefault = 30 * time.Second
)

// Options configures a Sink.
type Options struct {
	// URL is Meilisearch's base URL, e.g. "http://127.0.0.1:7700". Required.
	URL string
	// APIKey is sent as a bearer token: a key with the actions documents.add,
	// documents.delete, indexes.create, indexes.get, indexes.update, settings.get,
	// settings.update and tasks.get on the mapped indexes (or the master key). Default: none.
	APIKey string
	// Mapping selects the tables with a meilisearch section and projects their rows. Required.
	Mapping *mapping.Mapping
	// BatchSize is the most documents or deleted ids per task. Default: BatchSizeDefault.
	BatchSize int
	// BatchBytes is the largest request body in bytes; larger batches are split. A single
	// document larger than this is still sent alone. Default: BatchBytesDefault.
	BatchBytes int
	// Timeout bounds each HTTP request (the SDK's client has none). Waiting for a task is
	// bounded by the context Apply is given instead (a retry waits on the same task again).
	// Default: TimeoutDefault.
	Timeout time.Duration
	// Recheck is how long a table whose index is misconfigured (another primary key, settings
	// refused) stays refused before Apply checks the index again. Default: RecheckDefault.
	Recheck time.Duration
	// Log receives the sink's messages. Default: the standard logger.
	Log *logrus.Entry
	// HTTPClient carries the requests. Default: meilisearch-go's pooled client.
	HTTPClient *http.Client
}

// withDefaults returns o with every unset field filled.
func (o Options) withDefaults() Options {
	defaults.Positive(&o.BatchSize, BatchSizeDefault)
	defaults.Positive(&o.BatchBytes, BatchBytesDefault)
	defaults.Positive(&o.Timeout, TimeoutDefault)
	defaults.Positive(&o.Recheck, RecheckDefault)
	defaults.Log(&o.Log)
	return o
}

func (o Options) validate() error {
	if o.Mapping == nil {
		return errors.New("meilisearch sink: Options.Mapping is nil (pass the loaded mapping)")
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("meilisearch sink: URL %q is not an http(s) URL (e.g. http://127.0.0.1:7700)", o.URL)
	}
	return nil
}
