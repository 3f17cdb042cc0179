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
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT (SELECT tx FROM appwrite_sync.audit_log WHERE payload::jsonb->>'$id' = 'b') = l.tx
		AND (SELECT tx FROM appwrite_sync.history WHERE row_id = 'b') = l.tx FROM appwrite_sync.ledger l WHERE l.row_id = 'b'`).Scan(&sameTx))
	require.True(t, sameTx)
}

// An entry whose body passes the service's checks but not jsonb's (a number numeric cannot
// hold) does not fail its change: the state store keeps the body as text, and the delivery
// wraps it (package audit's TestOddBodiesAreKept).
func TestAuditEntryJsonbRefusesKeepsItsChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rec := NewRecorder(b.logPool, RecorderOptions{Metrics: b.m})
	t.Cleanup(rec.Close)
	c := ch("a", t0, connector.OpUpsert, "v1")
	c.Audit = auditEntry("databases.main.tables.posts.rows.a.update", []byte(`{"$id":"a","n":1e1000000}`))
	r, err := rec.RecordResult(ctx, c)
	require.NoError(t, err)
	require.Equal(t, Recorded, r)
	var n int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.audit_log`).Scan(&n))
	require.Equal(t, int64(1), n)
}
