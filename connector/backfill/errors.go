package backfill

import (
	"errors"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
)

// Causes of a job's context ending other than the manager stopping.
var (
	errCanceled  = errors.New("job canceled")
	errLeaseLost = errors.New("job lease lost to another process")
)

// permanent reports whether retrying the job cannot help: the configuration (key, project,
// table) or the data must change first. Everything else (Appwrite or the state store down,
// timeouts, rate limits after the client's own retries) is worth another attempt.
func permanent(err error) bool {
	if connector.IsPermanent(err) {
		return true
	}
	var ae *appwrite.APIError
	if errors.As(err, &ae) {
		return !ae.Retryable()
	}
	return false
}
