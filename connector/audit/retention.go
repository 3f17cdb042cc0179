package audit

import (
	"context"
	"fmt"
)

// sweepSQL removes one batch of the oldest entries of the warehouse table received before $1:
// the oldest RetentionBatch entries by seq, up to the first of them that is kept (received at
// or after $1). Only a prefix of the log is ever removed, so what is kept still chains; each
// batch locks only the rows it removes.
func sweepSQL(table string) string {
	return fmt.Sprintf(`
WITH oldest AS (SELECT seq, received_at FROM %[1]s ORDER BY seq LIMIT %[2]d),
kept AS (SELECT min(seq) AS seq FROM oldest WHERE received_at >= $1)
DELETE FROM %[1]s WHERE seq IN (SELECT seq FROM oldest WHERE seq < COALESCE((SELECT seq FROM kept), 9223372036854775807))`,
		table, RetentionBatch)
}

// sweepStateSQL removes one batch of the state store's entries received before $1 that the
// warehouse holds already (at or before the delivery's cursor): the state store only keeps
// them for their digests (a redelivery of one is recorded once while it is kept), so any of
// them may go, prefix or not; an entry not delivered yet stays whatever its age.
var sweepStateSQL = fmt.Sprintf(`
DELETE FROM appwrite_sync.audit_log WHERE (tx, seq) IN (
    SELECT l.tx, l.seq FROM appwrite_sync.audit_log l, appwrite_sync.audit_delivery c
    WHERE c.id = 1 AND (l.tx, l.seq) <= (c.tx, c.seq) AND l.received_at < $1
    ORDER BY l.tx, l.seq LIMIT %d)`, RetentionBatch)

// Sweep applies audit.retention to the warehouse table and to the state store (entries not
// yet delivered are kept there whatever their age), and returns how many it removed from each.
func (d *Deliverer) Sweep(ctx context.Context) (state, warehouse int64, err error) {
	if d.opts.Retention <= 0 {
		return 0, 0, nil
	}
	cutoff := d.opts.Now().Add(-d.opts.Retention)
	if warehouse, err = sweepAll(ctx, func() (int64, error) {
		tag, err := d.wh.Exec(ctx, sweepSQL(d.table), cutoff)
		return tag.RowsAffected(), err
	}); err != nil {
		return 0, warehouse, fmt.Errorf("removing old audit entries from the warehouse: %w", err)
	}
	if state, err = sweepAll(ctx, func() (int64, error) {
		tag, err := d.state.Exec(ctx, sweepStateSQL, cutoff)
		return tag.RowsAffected(), err
	}); err != nil {
		return state, warehouse, fmt.Errorf("removing old audit entries from the state store: %w", err)
	}
	if m := d.opts.Metrics; m != nil {
		m.AuditRemoved.WithLabelValues("state").Add(float64(state))
		m.AuditRemoved.WithLabelValues("warehouse").Add(float64(warehouse))
	}
	d.refreshKept(ctx)
	if state+warehouse > 0 {
		d.opts.Log.WithField("warehouse", warehouse).WithField("state", state).Info("removed audit log entries past audit.retention")
	}
	return state, warehouse, nil
}

// sweepAll runs batch until a batch removes less than a full one.
func sweepAll(ctx context.Context, batch func() (int64, error)) (int64, error) {
	var total int64
	for ctx.Err() == nil {
		n, err := batch()
		total += n
		if err != nil || n < RetentionBatch {
			return total, err
		}
	}
	return total, ctx.Err()
}
