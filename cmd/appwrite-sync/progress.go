package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// terminal is a writer that says whether it is a terminal, as a test's writer can.
type terminal interface{ IsTerminal() bool }

// isTerminal reports whether w shows a live display: a terminal, or a writer claiming to be one.
func isTerminal(w io.Writer) bool {
	if t, ok := w.(terminal); ok {
		return t.IsTerminal()
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// jobBar is a backfill job's progress bar: a spinner while the number of rows to read is
// unknown, then percentage, rows/s and ETA against it (an estimate from the $sequence range is
// labelled as such), with the rows created or updated so far.
type jobBar struct {
	bar   *progressbar.ProgressBar
	total int64 // the bar's max; -1 while unknown
}

func newJobBar(out io.Writer) *jobBar {
	return &jobBar{total: -1, bar: progressbar.NewOptions64(-1, progressbar.OptionSetWriter(out),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
		progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish())}
}

// update shows the job's state as polled.
func (b *jobBar) update(j jobView) {
	if j.RowsTotal > 0 {
		// An estimate may fall short (rows created during the scan): never run past the end.
		if total := max(j.RowsTotal, j.RowsRead); total != b.total {
			b.total = total
			b.bar.ChangeMax64(total)
		}
	}
	desc := j.Table
	if j.RowsTotal > 0 && !j.RowsTotalExact {
		desc += fmt.Sprintf(" (~%d rows, estimated)", j.RowsTotal)
	}
	desc += fmt.Sprintf(" %d created/updated", j.RowsChanged)
	if j.RowsDeleted > 0 {
		desc += fmt.Sprintf(", %d deleted", j.RowsDeleted)
	}
	b.bar.Describe(desc)
	_ = b.bar.Set64(j.RowsRead)
}

// Finish completes and clears the bar.
func (b *jobBar) Finish() error { return b.bar.Finish() }
