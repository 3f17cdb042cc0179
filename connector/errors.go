package connector

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// PermanentError marks a failure that retrying cannot fix (a value that does not convert to
// its column type, a document Meilisearch rejects). The delivery engine dead-letters the row
// with Reason instead of retrying it.
type PermanentError struct {
	Reason string
	Err    error
}

func (e *PermanentError) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError with a short reason.
func Permanent(reason string, err error) error { return &PermanentError{Reason: reason, Err: err} }

// IsPermanent reports whether err (or anything it wraps) is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// ErrSinkUnavailable marks a failure of the whole sink (down, unreachable, bad credentials).
// The engine pauses that sink's delivery with backoff and never dead-letters because of it.
var ErrSinkUnavailable = errors.New("sink unavailable")

// ErrUnauthorized marks an authentication/authorization failure of a sink: like
// ErrSinkUnavailable (pause, no dead-letter), reported distinctly in status.
var ErrUnauthorized = errors.New("sink rejected credentials")

// BatchError reports per-item permanent failures of a batch: every index not in Failed was
// applied. A sink returns it when it could isolate the bad rows (Benthos' BatchError).
type BatchError struct {
	Failed map[int]error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("%d item(s) of the batch failed permanently", len(e.Failed))
}

// Fail records that item i failed permanently with err.
func (e *BatchError) Fail(i int, err error) {
	if e.Failed == nil {
		e.Failed = map[int]error{}
	}
	e.Failed[i] = err
}

// ConfigError is one problem in a YAML configuration or mapping file, pointing at the exact
// place and saying how to fix it. Value must never hold a secret: callers redact it.
type ConfigError struct {
	File    string
	Line    int
	Path    string // YAML path, e.g. tables[2].postgres.columns.views
	Value   string // offending value as written (redacted for secrets); may be empty
	Problem string // what is wrong
	Fix     string // how to fix it; may be empty
}

func (e ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	if e.Value != "" {
		fmt.Fprintf(&b, " (got %q)", e.Value)
	}
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// ConfigErrors is every problem found in one pass, so a user fixes them all at once.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Sorted returns the errors ordered by file and line.
func (es ConfigErrors) Sorted() ConfigErrors {
	out := append(ConfigErrors(nil), es...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Line < out[j].Line
	})
	return out
}

// Err returns nil when there are no errors, the sorted list otherwise.
func (es ConfigErrors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es.Sorted()
}
