package ledger

import (
	"context"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/audit"
)

// auditEntry is the audit log entry of a delivery with this events header and body.
func auditEntry(events string, body []byte) *connector.AuditEntry {
	return &connector.AuditEntry{ReceivedAt: t0, WebhookID: "wh1", ProjectID: "proj", UserID: "u-editor",
		Events: events, Payload: body, Digest: audit.Digest(events, body)}
}

// A change's audit entry commits in the change's own transaction (one commit), whatever the
// ledger does with the change: a stale change's delivery is audited too, and a byte-identical
// redelivery is recorded once.
func TestAuditEntriesCommitWithTheChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	notified := make(chan struct{}, 8)
	rec := NewRecorder(b.logPool, RecorderOptions{Metrics: b.m, AuditNotify: func() { notified <- struct{}{} }})
	t.Cleanup(rec.Close)
	record := func(c connector.Change, events string) Result {
		c.Audit = auditEntry(events, c.Row)
		r, err := rec.RecordResult(ctx, c)
		require.NoError(t, err)
		return r
	}
	v2 := ch("a", t0.Add(time.Second), connector.OpUpsert, "v2")
	require.Equal(t, Recorded, record(v2, "databases.main.tables.posts.rows.a.update"))
	<-notified
	var sameTx bool
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT a.tx = l.tx FROM appwrite_sync.audit_log a, appwrite_sync.ledger l WHERE l.row_id = 'a'`).Scan(&sameTx))
	require.True(t, sameTx, "the entry and the change commit in one transaction")

	require.Equal(t, Duplicate, record(v2, "databases.main.tables.posts.rows.a.update")) // byte-identical redelivery
	require.Equal(t, Stale, record(ch("a", t0, connector.OpUpsert, "v1"), "databases.main.tables.posts.rows.a.update"))
	var n int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.audit_log`).Scan(&n))
	require.Equal(t, int64(2), n)
	entries := func(result string) float64 {
		var m dto.Metric
		require.NoError(t, b.m.AuditEntries.WithLabelValues(result).Write(&m))
		return m.GetCounter().GetValue()
	}
	require.Equal(t, 2.0, entries("recorded"))
	require.Equal(t, 1.0, entries("duplicate"))

	// A group with history on and audited changes: one batch, one transaction.
	hrec := NewRecorder(b.logPool, RecorderOptions{History: func(connector.TableKey) (HistoryPolicy, bool) { return HistoryPolicy{}, true }})
	t.Cleanup(hrec.Close)
	c := ch("b", t0, connector.OpUpsert, "x")
	c.Audit = auditEntry("databases.main.tables.posts.rows.b.update", c.Row)
	_, err := hrec.RecordResult(ctx, c)
	require.NoError(t, err)
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT (SELECT tx FROM appwrite_sync.audit_log WHERE digest = $1) = l.tx
		AND (SELECT tx FROM appwrite_sync.history WHERE row_id = 'b') = l.tx FROM appwrite_sync.ledger l WHERE l.row_id = 'b'`, c.Audit.Digest).Scan(&sameTx))
	require.True(t, sameTx)
}

// An audited change that keeps a version of the row history with the same body writes the
// body once: the entry names the version instead of holding a copy; the delivery reads the
// body from it (the warehouse's payload and chain are as before), and history retention keeps
// the version until the entry is delivered. An entry whose body is not the version's keeps its
// own copy.
func TestAuditEntryOfAHistoryVersionWritesTheBodyOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rec := NewRecorder(b.logPool, RecorderOptions{History: func(connector.TableKey) (HistoryPolicy, bool) { return HistoryPolicy{}, true }})
	t.Cleanup(rec.Close)
	same := ch("a", t0, connector.OpUpsert, "x")
	same.Audit = auditEntry("databases.main.tables.posts.rows.a.update", same.Row)
	other := ch("b", t0, connector.OpUpsert, "y")
	other.Audit = auditEntry("databases.main.tables.posts.rows.b.update", []byte(`{"$id": "b", "title": "not the row"}`))
	for _, c := range []connector.Change{same, other} {
		_, err := rec.RecordResult(ctx, c)
		require.NoError(t, err)
	}
	var stored int64
	var noCopy, named bool
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT a.payload IS NULL, a.history_seq = v.seq AND a.tx = v.tx
		FROM appwrite_sync.audit_log a, appwrite_sync.history v WHERE a.digest = $1 AND v.row_id = 'a'`, same.Audit.Digest).Scan(&noCopy, &named))
	require.True(t, noCopy, "the entry holds no copy of the body")
	require.True(t, named, "the entry names the version")
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.audit_log WHERE payload IS NOT NULL`).Scan(&stored))
	require.Equal(t, int64(1), stored, "only the entry whose body is not the version's holds a copy")

	// Retention: the version whose body the undelivered entry needs stays; b's goes.
	admin := NewAdmin(b.pool)
	removed, err := admin.SweepHistory(ctx, key, t0.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(1), removed)

	d := audit.NewDeliverer(b.pool, b.pool, audit.DelivererOptions{Schema: "wh", Table: "audit_log"})
	require.NoError(t, d.EnsureTable(ctx))
	require.Eventually(t, func() bool { // parallel tests' transactions may hold the read back
		_, err := d.Deliver(ctx)
		require.NoError(t, err)
		var n int64
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM wh.audit_log`).Scan(&n))
		return n == 2
	}, 10*time.Second, 5*time.Millisecond)
	var equal bool
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT payload = $1::jsonb FROM wh.audit_log WHERE payload->>'$id' = 'a'`, string(same.Row)).Scan(&equal))
	require.True(t, equal, "the warehouse holds the body")
	rep, err := audit.Verify(ctx, b.pool, "wh", "audit_log")
	require.NoError(t, err)
	require.Equal(t, int64(2), rep.Entries)

	removed, err = admin.SweepHistory(ctx, key, t0.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(1), removed, "delivered: the version may go")
}
