package backfill_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
)

// A table over Appwrite's counting cap gets a total estimated from its $sequence range,
// labelled as an estimate, with or without parallel pages (whose windows do not count); below
// the cap the total is Appwrite's exact count.
func TestRowsTotalExactBelowTheCapEstimatedAbove(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		rows     int
		parallel int
		exact    bool
	}{
		{"exact count", 2500, 0, true},
		{"estimate", 6000, 0, false},
		{"estimate, parallel pages", 6000, 4, false},
		{"exact count, parallel pages", 3000, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{manager: func(o *backfill.Options) { o.ParallelPages = tc.parallel }})
			b.api.Seed(posts, tc.rows, 50)
			j := b.wait(b.start("main/posts", "full"), 60*time.Second)
			require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
			require.NotNil(t, j.RowsTotal)
			require.EqualValues(t, tc.rows, *j.RowsTotal)
			require.Equal(t, tc.exact, j.RowsTotalExact)
			if tc.exact {
				require.NotNil(t, j.Total)
				require.EqualValues(t, tc.rows, *j.Total)
			} else {
				require.Nil(t, j.Total, "total stays what Appwrite counted exactly")
			}
		})
	}
}
