package backfill

import (
	"context"
	"strconv"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
)

// rowsTotal is the number of rows a fresh scan will read, as its first page lets it be known:
// Appwrite's count when it is exact (below appwriteTotalCap). Otherwise, for a scan of the
// whole table, an estimate from the highest $sequence: sequences count up from 1 and deletes
// leave gaps, so it is an upper bound, and at least the cap, which is how a job tells an
// estimate from an exact count (Job.RowsTotalExact). -1: unknown (a resumed scan, or an
// incremental one over the cap). Sizing is progress information only: a failed request leaves
// the total unknown and the scan goes on.
func (r *run) rowsTotal(ctx context.Context, key connector.TableKey, q appwrite.ListQuery, counted int64) int64 {
	if counted >= 0 && counted < appwriteTotalCap {
		return counted
	}
	if !q.WithTotal || !q.UpdatedSince.IsZero() || q.AfterSequence != "" {
		return -1
	}
	c := r.m.opts.Client
	if counted < 0 { // the parallel scan's windows do not count: ask once
		p, err := c.ListRows(ctx, key, appwrite.ListQuery{Limit: 1, WithTotal: true, Select: []string{"$id"}})
		if err != nil {
			r.log.WithError(err).Debug("backfill: counting the table's rows")
			return -1
		}
		if p.Total >= 0 && p.Total < appwriteTotalCap {
			return p.Total
		}
	}
	top, err := c.ListRows(ctx, key, appwrite.ListQuery{Descending: true, Limit: 1, Select: []string{"$id"}})
	if err != nil || len(top.Rows) == 0 {
		if err != nil {
			r.log.WithError(err).Debug("backfill: finding the highest $sequence")
		}
		return -1
	}
	seq, err := appwrite.RowSequence(top.Rows[0])
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if err != nil {
		return -1 // opaque sequences (UUIDv7): no range to estimate from
	}
	return max(n, appwriteTotalCap)
}

// setRowsTotal fills the total fields of a job read from the state store, whose total column
// holds an exact count (below appwriteTotalCap) or an estimate (at or above it).
func (j *Job) setRowsTotal(stored *int64) {
	j.RowsTotal, j.RowsTotalExact, j.Total = stored, false, nil
	if stored != nil && *stored < appwriteTotalCap {
		j.RowsTotalExact, j.Total = true, stored
	}
}
