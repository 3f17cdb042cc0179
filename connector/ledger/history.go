package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/audit"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtext"
)

// HistoryPolicy is a table's row history (postgres.history): every distinct version of its
// rows is kept, not only the newest (see "Row history" in the package documentation).
type HistoryPolicy struct {
	// Retention: versions whose $updatedAt is older than this are removed by SweepHistory, and
	// not kept when they arrive; 0 keeps every version.
	Retention time.Duration
}

// historySQL appends a group's versions of tables with history on to appwrite_sync.history. The
// primary key is the version (table, row, $updatedAt, op, content hash): a duplicate or a
// replay of a kept version writes nothing. Its WHERE is the record statement's tombstone
// horizon (recordSQL), read the same way (the newest horizon once per statement, a table's
// own only for an upsert not newer than that): a webhook upsert the ledger refuses as a
// possible replay of a deleted row is not kept either. It returns the table of each version it kept.
const historySQL = `
INSERT INTO appwrite_sync.history (table_key, row_id, updated_at, op, hash, actor, event, source, source_row)
SELECT table_key, row_id, updated_at, op, hash, actor, event, source, source_row
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::smallint[], $5::bytea[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bool[])
    AS t(table_key, row_id, updated_at, op, hash, actor, event, source, source_row, authoritative)
WHERE t.op = 2 OR t.authoritative
    OR t.updated_at > (SELECT COALESCE(max(h.updated_at), '-infinity') FROM appwrite_sync.ledger_horizon h)
    OR t.updated_at > COALESCE((SELECT h.updated_at FROM appwrite_sync.ledger_horizon h WHERE h.table_key = t.table_key), '-infinity')
    OR COALESCE((SELECT true FROM appwrite_sync.ledger k WHERE k.table_key = t.table_key AND k.row_id = t.row_id), false)
ON CONFLICT DO NOTHING
RETURNING table_key`

// maxHeaderText bounds the actor and event kept with a version, in bytes (Appwrite's user ids
// are at most 36 characters; an event names three ids of at most 255).
const maxHeaderText = 1000

// historyStmt names historySQL's prepared statement on each state store connection.
const historyStmt = "appwrite_sync_record_history"

// historyGroup is the history insert of one group: its encoded parameters, and what the last
// attempt kept. A nil *historyGroup is a group without history (every method allows it).
type historyGroup struct {
	params [][]byte
	kept   map[string]int // table -> versions kept
}

// historyKey is one version, to keep each once per group.
type historyKey struct {
	table, id string
	ua        int64
	op        connector.Op
	hash      string
}

// historyOf builds the history insert of a group: every distinct version of a table with
// history on, whatever it does to the ledger's newest version (late, stale and tie-losing
// versions are history too), except versions already older than the table's retention. Nil
// when no change of the group has history: tables without it cost nothing.
func (r *Recorder) historyOf(reqs []*request) *historyGroup {
	if r.opts.History == nil {
		return nil
	}
	var now time.Time
	seen := map[historyKey]bool{}
	var keep []*request
	for _, q := range reqs {
		pol, on := r.opts.History(q.ch.Key)
		if !on {
			continue
		}
		if pol.Retention > 0 {
			if now.IsZero() {
				now = time.Now()
			}
			if q.ch.UpdatedAt.Before(now.Add(-pol.Retention)) {
				continue // due for removal already
			}
		}
		k := historyKey{q.table, q.ch.RowID, q.ch.UpdatedAt.UnixNano(), q.ch.Op, string(q.hash)}
		if seen[k] {
			continue
		}
		seen[k] = true
		keep = append(keep, q)
	}
	if len(keep) == 0 {
		return nil
	}
	// The order the record statement locks in, so concurrent groups wait for each other's
	// versions instead of deadlocking.
	sort.Slice(keep, func(i, j int) bool {
		a, b := keep[i], keep[j]
		if a.table != b.table {
			return a.table < b.table
		}
		if a.ch.RowID != b.ch.RowID {
			return a.ch.RowID < b.ch.RowID
		}
		if c := a.ch.UpdatedAt.Compare(b.ch.UpdatedAt); c != 0 {
			return c < 0
		}
		if a.ch.Op != b.ch.Op {
			return a.ch.Op < b.ch.Op
		}
		return bytes.Compare(a.hash, b.hash) < 0
	})
	n := len(keep)
	tk, ids, srcs := make([]string, n), make([]string, n), make([]string, n)
	uas, ops, hashes := make([]time.Time, n), make([]int16, n), make([][]byte, n)
	actors, events, rows := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	auth := make([]bool, n)
	size := 10*arrayHeaderLen + 10*4*n + n*(8+2+1)
	for i, q := range keep {
		tk[i], ids[i], uas[i], ops[i], hashes[i] = q.table, q.ch.RowID, q.ch.UpdatedAt, int16(q.ch.Op), q.hash
		srcs[i], rows[i], auth[i] = connector.SourceOf(&q.ch), q.ch.Row, q.ch.Authoritative
		// Headers are the client's bytes: a header the state store cannot hold as text must
		// not turn a valid change into a refused one.
		if q.ch.Actor != "" {
			actors[i] = []byte(pgtext.Clean(q.ch.Actor, maxHeaderText)) // nil: NULL
		}
		if q.ch.Event != "" {
			events[i] = []byte(pgtext.Clean(q.ch.Event, maxHeaderText))
		}
		size += len(tk[i]) + len(ids[i]) + len(hashes[i]) + len(srcs[i]) + len(actors[i]) + len(events[i]) + len(rows[i])
	}
	p := newParams(size, 10)
	p.addVersions(tk, ids, uas, ops, hashes)
	p.add(appendBytesArray(p.buf, oidText, actors))
	p.add(appendBytesArray(p.buf, oidText, events))
	p.add(appendTextArray(p.buf, oidText, srcs))
	p.add(appendBytesArray(p.buf, oidText, rows))
	p.add(appendBoolArray(p.buf, auth))
	return &historyGroup{params: p.out, kept: map[string]int{}}
}

func (h *historyGroup) reset() {
	if h != nil {
		clear(h.kept)
	}
}

func (h *historyGroup) keptAny() bool { return h != nil && len(h.kept) > 0 }

// count adds what the group kept to appwrite_sync_history_kept_total.
func (h *historyGroup) count(m *metrics.Metrics) {
	if h == nil || m == nil {
		return
	}
	for t, n := range h.kept {
		m.HistoryKept.WithLabelValues(t).Add(float64(n))
	}
}

// execPipeline is execRecord for a group with history or audited changes: the history
// insert, the audit log insert and the record statement go in one batch, which Postgres runs
// as one implicit transaction (the versions and entries are durable exactly when the ledger's
// rows are), in one round trip. The order is the same for every group (history, audit log,
// ledger), so concurrent groups wait for each other's rows in one order.
func (r *Recorder) execPipeline(ctx context.Context, conn *pgx.Conn, sd *pgconn.StatementDescription, params [][]byte,
	hist *historyGroup, aud *auditGroup, row func(vals [][]byte) error) error {
	b := &pgconn.Batch{}
	var onRow []func(vals [][]byte) // per statement of the batch
	var names []string
	if hist != nil {
		hsd, err := conn.Prepare(ctx, historyStmt, historySQL)
		if err != nil {
			return err
		}
		b.ExecStatement(hsd, hist.params, recordFormats, nil)
		onRow = append(onRow, func(vals [][]byte) { hist.kept[string(vals[0])]++ })
		names = append(names, historyStmt)
	}
	if aud != nil {
		asd, err := conn.Prepare(ctx, auditStmt, audit.InsertSQL)
		if err != nil {
			return err
		}
		b.ExecStatement(asd, aud.params, recordFormats, nil)
		onRow = append(onRow, func(vals [][]byte) { aud.inserted[byteaText(vals[0])] = true })
		names = append(names, auditStmt)
	}
	b.ExecStatement(sd, params, recordFormats, nil)
	names = append(names, recordStmt)
	mrr := conn.PgConn().ExecBatch(ctx, b)
	var rowErr, firstErr error
	for i := 0; mrr.NextResult(); i++ {
		rr := mrr.ResultReader()
		for rr.NextRow() {
			switch {
			case rowErr != nil:
			case i < len(onRow):
				onRow[i](rr.Values())
			default:
				rowErr = row(rr.Values())
			}
		}
		if _, err := rr.Close(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if err := mrr.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr != nil {
		forgetStatements(ctx, conn, names...)
		return firstErr
	}
	return rowErr
}

// HistoryVersion is one version of a row from the history log, to write to the warehouse.
type HistoryVersion struct {
	Key     connector.TableKey
	RowID   string
	Version connector.Version
	// Actor and Event are empty when unknown (API-key writes; rows read from the API).
	Actor, Event string
	Source       string
	RecordedAt   time.Time
	// Row is the source row as received (for a delete: the row the delete carried).
	Row []byte
	Pos Pos
}

// readHistorySQL reads the history log after a position, as readLogSQL reads the ledger's:
// only entries whose transaction is older than every transaction still running, so the cursor
// never moves past an entry that commits later with a smaller position.
const readHistorySQL = `SELECT table_key, row_id, updated_at, op, hash, COALESCE(actor, ''), COALESCE(event, ''), source, recorded_at, source_row, tx, seq
    FROM appwrite_sync.history
    WHERE (tx, seq) > ($1::xid8, $2::bigint) AND tx < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
    ORDER BY tx, seq LIMIT $3`

// ReadHistory returns up to limit versions of the history log after pos, in log order.
func (q *Queue) ReadHistory(ctx context.Context, after Pos, limit int) ([]HistoryVersion, error) {
	rows, err := q.pool.Query(ctx, readHistorySQL, after.Tx, after.Seq, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the history log: %w", err)
	}
	defer rows.Close()
	var out []HistoryVersion
	for rows.Next() {
		var v HistoryVersion
		var tk string
		var op int16
		if err := rows.Scan(&tk, &v.RowID, &v.Version.UpdatedAt, &op, &v.Version.Hash, &v.Actor, &v.Event, &v.Source,
			&v.RecordedAt, &v.Row, &v.Pos.Tx, &v.Pos.Seq); err != nil {
			return nil, fmt.Errorf("reading the history log: %w", err)
		}
		if v.Key, err = connector.ParseTableKey(tk); err != nil {
			return nil, err
		}
		v.Version.Op = connector.Op(op)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the history log: %w", err)
	}
	return out, nil
}

// AcquireHistory takes (or renews) the delivery lease of a history sink, as Acquire does for a
// sink of the ledger's log, and returns its settled cursor in the history log.
func (q *Queue) AcquireHistory(ctx context.Context, sinkName, owner string, lease time.Duration) (held bool, cursor Pos, left time.Duration, err error) {
	return q.acquire(ctx, "history_cursor", "history delivery", sinkName, owner, lease)
}

// SettleHistory moves a history sink's cursor to pos and renews its lease; ErrLeaseLost when
// owner no longer holds it (nothing moved).
func (q *Queue) SettleHistory(ctx context.Context, sinkName, owner string, lease time.Duration, pos Pos) (time.Duration, error) {
	var secs float64
	err := q.pool.QueryRow(ctx, `UPDATE appwrite_sync.history_cursor
        SET tx = $4::xid8, seq = $5::bigint, moved_at = now(), lease_until = now() + $3::interval
        WHERE sink = $1 AND owner = $2
        RETURNING EXTRACT(EPOCH FROM lease_until - now())::float8`, sinkName, owner, lease, pos.Tx, pos.Seq).Scan(&secs)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrLeaseLost
	}
	if err != nil {
		return 0, fmt.Errorf("settling %s history: %w", sinkName, err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// ResignHistory gives a history sink's lease up (shutdown).
func (q *Queue) ResignHistory(ctx context.Context, sinkName, owner string) error {
	return q.resign(ctx, "history_cursor", sinkName, owner)
}

// historySweepBatch is how many versions one statement of a retention sweep removes: each
// statement is its own short transaction, so neither webhooks nor delivery wait on it.
const historySweepBatch = 1000

// SweepHistory removes the versions of table whose $updatedAt is before cutoff from the state
// store's history, in batches of historySweepBatch (each its own transaction), and returns
// how many it removed. Versions not delivered yet go too: they are due in the warehouse as well.
// Database "*" sweeps the table of that id in every database.
func (a *Admin) SweepHistory(ctx context.Context, table connector.TableKey, cutoff time.Time) (int64, error) {
	match, arg := "table_key = $1", table.String()
	if table.Database == "*" {
		match, arg = "table_key LIKE $1", "%/"+strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(table.Table)
	}
	var total int64
	for {
		tag, err := a.pool.Exec(ctx, `DELETE FROM appwrite_sync.history WHERE ctid = ANY (ARRAY(
            SELECT ctid FROM appwrite_sync.history WHERE `+match+` AND updated_at < $2 LIMIT $3))`,
			arg, cutoff, historySweepBatch)
		if err != nil {
			return total, fmt.Errorf("removing history of %s: %w", table, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < historySweepBatch {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
