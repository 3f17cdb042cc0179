// Package defaults fills the unset fields of an options struct with the defaults its package
// defines, so each constructor states its defaults as one line a field and applies them alike.
package defaults

import (
	"io"

	"github.com/sirupsen/logrus"
)

// Positive sets *v to def unless *v is above zero: for counts, sizes and durations where zero and
// negative both mean unset.
func Positive[T ~int | ~int32 | ~int64 | ~float64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Zero sets *v to def when *v is the zero value: for fields whose negative values mean
// something, and for strings.
func Zero[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Log sets a nil *l to an entry of logrus's standard logger.
func Log(l **logrus.Entry) {
	if *l == nil {
		*l = logrus.NewEntry(logrus.StandardLogger())
	}
}

// Quiet sets a nil *l to an entry that discards everything: for packages whose messages are
// only wanted when the caller asks for them.
func Quiet(l **logrus.Entry) {
	if *l == nil {
		q := logrus.New()
		q.SetOutput(io.Discard)
		*l = logrus.NewEntry(q)
	}
}
