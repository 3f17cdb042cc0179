package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/internal/pgerr"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtext"
)

// Pos is a position in the delivery log: the ledger ordered by (writing transaction, seq).
type Pos struct {
	Tx  uint64
	Seq int64
}

// Less orders positions.
func (p Pos) Less(o Pos) bool { return p.Tx < o.Tx || (p.Tx == o.Tx && p.Seq < o.Seq) }

// ErrLeaseLost means another replica holds the sink's delivery lease: the caller must stop
// delivering that sink and drop what it has in flight (the new holder re-delivers it).
var ErrLeaseLost = errors.New("delivery lease lost to another replica")

// Queue is the per-sink view of the delivery log, its cursors, leases and retry rows.
type Queue struct {
	pool *pgxpool.Pool
}

// NewQueue wraps the state store.
func NewQueue(pool *pgxpool.Pool) *Queue { return &Queue{pool: pool} }

// Entry is one row to deliver: its newest ledger version, and for rows taken from the
// retry table the failed attempts so far.
type Entry struct {
	Item     sink.Item
	Pos      Pos
	Attempts int
}

// Acquire takes the sink's delivery lease for owner, or renews it when owner holds it. held
// is false while another replica's lease is valid. It returns the settled cursor and how
// long the lease lasts from now (as the state store's clock sees it).
func (q *Queue) Acquire(ctx context.Context, sinkName, owner string, lease time.Duration) (held bool, cursor Pos, left time.Duration, err error) {
	return q.acquire(ctx, "sink_cursor", "delivery", sinkName, owner, lease)
}

// acquire takes or renews a lease of table (sink_cursor, or history_cursor for a history
// sink) as Acquire does; what names the lease in the error.
func (q *Queue) acquire(ctx context.Context, table, what, sinkName, owner string, lease time.Duration) (held bool, cursor Pos, left time.Duration, err error) {
	var secs float64
	err = q.pool.QueryRow(ctx, `INSERT INTO appwrite_sync.`+table+` AS c (sink, owner, lease_until) VALUES ($1, $2, now() + $3::interval)
        ON CONFLICT (sink) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
        WHERE c.owner = excluded.owner OR c.owner IS NULL OR c.lease_until < now()
        RETURNING c.tx, c.seq, EXTRACT(EPOCH FROM c.lease_until - now())::float8`, sinkName, owner, lease).
		Scan(&cursor.Tx, &cursor.Seq, &secs)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, Pos{}, 0, nil
	}
	if err != nil {
		return false, Pos{}, 0, fmt.Errorf("taking the %s %s lease: %w", sinkName, what, err)
	}
	return true, cursor, time.Duration(secs * float64(time.Second)), nil
}

// Resign gives the lease up (shutdown), so another replica takes over at once.
func (q *Queue) Resign(ctx context.Context, sinkName, owner string) error {
	return q.resign(ctx, "sink_cursor", sinkName, owner)
}

// resign gives a lease of table up, as Resign does.
func (q *Queue) resign(ctx context.Context, table, sinkName, owner string) error {
	_, err := q.pool.Exec(ctx, `UPDATE appwrite_sync.`+table+` SET owner = NULL, lease_until = '-infinity'
        WHERE sink = $1 AND owner = $2`, sinkName, owner)
	return err
}

// SourceSQL is the source row of ledger row l as text: source since migration 6, the json
// column row for rows recorded before it (they are not rewritten).
const SourceSQL = `COALESCE(l.source, l.row::text)`

// readLogSQL reads entries after a position whose writing transaction is older than every
// transaction still running: those can no longer be joined by an entry with a smaller
// position, so a cursor moving past them never skips one.
const readLogSQL = `SELECT table_key, row_id, 0, tx, seq, updated_at, op, hash, ` + SourceSQL + `
    FROM appwrite_sync.ledger l
    WHERE (tx, seq) > ($1::xid8, $2::bigint) AND tx < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
    ORDER BY tx, seq LIMIT $3`

// ReadLog returns up to limit log entries after pos, in log order.
func (q *Queue) ReadLog(ctx context.Context, after Pos, limit int) ([]Entry, error) {
	rows, err := q.pool.Query(ctx, readLogSQL, after.Tx, after.Seq, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the delivery log: %w", err)
	}
	return collectEntries(rows)
}

// ReadRetries returns up to limit retry rows of the sink that are due, with their rows'
// current ledger versions, oldest due first.
func (q *Queue) ReadRetries(ctx context.Context, sinkName string, limit int) ([]Entry, error) {
	rows, err := q.pool.Query(ctx, `SELECT r.table_key, r.row_id, r.attempts, l.tx, l.seq, l.updated_at, l.op, l.hash, l.source
        FROM appwrite_sync.sink_retry r CROSS JOIN LATERAL (
            SELECT tx, seq, updated_at, op, hash, `+SourceSQL+` AS source FROM appwrite_sync.ledger l
            WHERE l.table_key = r.table_key AND l.row_id = r.row_id) l
        WHERE r.sink = $1 AND r.dead_at IS NULL AND r.available_at <= now()
        ORDER BY r.available_at LIMIT $2`, sinkName, limit)
	if err != nil {
		return nil, fmt.Errorf("reading %s retries: %w", sinkName, err)
	}
	return collectEntries(rows)
}

// collectEntries reads rows of (table_key, row_id, attempts, tx, seq, updated_at, op, hash,
// row text).
func collectEntries(rows pgx.Rows) ([]Entry, error) {
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var tk string
		var row []byte // pgx copies it out of its buffer: the only copy
		var op int16
		if err := rows.Scan(&tk, &e.Item.RowID, &e.Attempts, &e.Pos.Tx, &e.Pos.Seq, &e.Item.Version.UpdatedAt, &op, &e.Item.Version.Hash, &row); err != nil {
			return nil, err
		}
		key, err := connector.ParseTableKey(tk)
		if err != nil {
			return nil, err
		}
		e.Item.Key, e.Item.Seq, e.Item.Version.Op, e.Item.Row = key, e.Pos.Seq, connector.Op(op), row
		out = append(out, e)
	}
	return out, rows.Err()
}

// Outcome of one delivered item.
type Outcome struct {
	Item sink.Item
	// Err nil: applied. Permanent: dead-letter. Other: retry after Backoff.
	Err     error
	Backoff time.Duration
	// Attempts is the number of failed attempts including this one (retries only).
	Attempts int
	// Deferred: not sent because an older version of the row was in flight; take it again
	// at once, without counting an attempt.
	Deferred bool
}

// Settle records a batch's outcomes in one transaction, renews the lease and, when cursor
// is not nil, moves the sink's cursor there. Applied items drop their retry or dead-letter
// row unless it holds a newer version; failures write one (never over a newer version).
// It fails with ErrLeaseLost, changing nothing, when owner no longer holds the lease.
//
// Error texts are stored cleaned (pgtext.Clean). Should the state store still refuse the
// batch because of what one row holds (a data error), the failures are written one by one
// and a row refused again is dead-lettered with a replacement reason: no row's error can
// keep the sink re-applying the same batch.
func (q *Queue) Settle(ctx context.Context, sinkName, owner string, lease time.Duration, outs []Outcome, cursor *Pos) (left time.Duration, err error) {
	var ok settled
	var fails failures
	for _, o := range outs {
		k := o.Item.Key.String()
		if o.Err == nil && !o.Deferred {
			ok.k, ok.id, ok.seq = append(ok.k, k), append(ok.id, o.Item.RowID), append(ok.seq, o.Item.Seq)
			continue
		}
		why, dead, after := "", false, o.Backoff
		switch {
		case o.Deferred:
			why, after = "deferred: an older version of the row was in flight", 0
		case connector.IsPermanent(o.Err):
			why, dead = pgtext.Clean(o.Err.Error(), maxErrorText), true
		default:
			why = pgtext.Clean(o.Err.Error(), maxErrorText)
		}
		fails.add(k, o.Item.RowID, o.Item.Seq, int32(o.Attempts), why, after, dead)
	}
	secs, err := q.settle(ctx, sinkName, owner, lease, cursor, &ok, &fails, false)
	if pgerr.IsData(err) && len(fails.k) > 0 {
		secs, err = q.settle(ctx, sinkName, owner, lease, cursor, &ok, &fails, true)
	}
	if err != nil {
		if errors.Is(err, ErrLeaseLost) {
			return 0, err
		}
		return 0, fmt.Errorf("settling %s batch: %w", sinkName, err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// settle is Settle's transaction; it returns the seconds the lease has left. oneByOne writes
// the failures one by one (failures.writeOneByOne).
func (q *Queue) settle(ctx context.Context, sinkName, owner string, lease time.Duration, cursor *Pos, ok *settled, fails *failures, oneByOne bool) (float64, error) {
	hasCursor, cur := cursor != nil, Pos{}
	if hasCursor {
		cur = *cursor
	}
	var secs float64
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE appwrite_sync.sink_cursor
            SET lease_until = now() + $3::interval,
                tx = CASE WHEN $4 THEN $5::xid8 ELSE tx END, seq = CASE WHEN $4 THEN $6::bigint ELSE seq END,
                moved_at = CASE WHEN $4 THEN now() ELSE moved_at END
            WHERE sink = $1 AND owner = $2
            RETURNING EXTRACT(EPOCH FROM lease_until - now())::float8`, sinkName, owner, lease, hasCursor, cur.Tx, cur.Seq).Scan(&secs)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrLeaseLost
		}
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		if len(ok.k) > 0 {
			// One primary-key probe per applied item (the table is usually empty or small).
			b.Queue(`DELETE FROM appwrite_sync.sink_retry r WHERE r.ctid = ANY (ARRAY(
                SELECT x.ctid FROM unnest($2::text[], $3::text[], $4::bigint[]) AS d(k, id, seq)
                CROSS JOIN LATERAL (SELECT ctid FROM appwrite_sync.sink_retry x
                    WHERE x.sink = $1 AND x.table_key = d.k AND x.row_id = d.id AND x.seq <= d.seq) x))`,
				sinkName, ok.k, ok.id, ok.seq)
		}
		if len(fails.k) > 0 && !oneByOne {
			fails.queue(b, sinkName)
		}
		if b.Len() > 0 {
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
		}
		if oneByOne {
			return fails.writeOneByOne(ctx, tx, sinkName)
		}
		return nil
	})
	return secs, err
}

// settled are the applied items a settle clears from the retry table.
type settled struct {
	k, id []string
	seq   []int64
}

// maxErrorText bounds the error text stored with a retry or dead letter, in bytes.
const maxErrorText = 2000

// failures are the retry and dead-letter rows a settle writes, as parallel arrays (one
// statement for all of them).
type failures struct {
	k, id, why []string
	seq        []int64
	attempts   []int32
	after      []time.Duration
	dead       []bool
}

func (f *failures) add(k, id string, seq int64, attempts int32, why string, after time.Duration, dead bool) {
	f.k, f.id, f.seq, f.attempts = append(f.k, k), append(f.id, id), append(f.seq, seq), append(f.attempts, attempts)
	f.why, f.after, f.dead = append(f.why, why), append(f.after, after), append(f.dead, dead)
}

// one returns failure i alone.
func (f *failures) one(i int) failures {
	return failures{k: f.k[i : i+1], id: f.id[i : i+1], why: f.why[i : i+1], seq: f.seq[i : i+1],
		attempts: f.attempts[i : i+1], after: f.after[i : i+1], dead: f.dead[i : i+1]}
}

func (f *failures) queue(b *pgx.Batch, sinkName string) {
	b.Queue(`INSERT INTO appwrite_sync.sink_retry AS r (sink, table_key, row_id, seq, attempts, last_error, available_at, dead_at)
        SELECT $1, k, id, seq, attempts, why, now() + after, CASE WHEN dead THEN now() END
        FROM unnest($2::text[], $3::text[], $4::bigint[], $5::int[], $6::text[], $7::interval[], $8::bool[])
            AS d(k, id, seq, attempts, why, after, dead)
        ON CONFLICT (sink, table_key, row_id) DO UPDATE
            SET seq = excluded.seq, attempts = excluded.attempts, last_error = excluded.last_error,
                available_at = excluded.available_at, dead_at = excluded.dead_at,
                enqueued_at = CASE WHEN r.dead_at IS NOT NULL THEN now() ELSE r.enqueued_at END
            WHERE r.seq <= excluded.seq`,
		sinkName, f.k, f.id, f.seq, f.attempts, f.why, f.after, f.dead)
}

// writeOneByOne writes each failure in a savepoint of its own. One the state store refuses
// for its data is dead-lettered instead with a replacement reason that says why, in ASCII
// (storable in any server encoding); if even that is refused (the row's key itself), the
// settle fails.
func (f *failures) writeOneByOne(ctx context.Context, tx pgx.Tx, sinkName string) error {
	write := func(one failures) error {
		return pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			b := &pgx.Batch{}
			one.queue(b, sinkName)
			return sp.SendBatch(ctx, b).Close()
		})
	}
	for i := range f.k {
		one := f.one(i)
		err := write(one)
		if !pgerr.IsData(err) {
			if err != nil {
				return err
			}
			continue
		}
		var pgErr *pgconn.PgError
		errors.As(err, &pgErr)
		one.why = []string{"error text could not be stored: " + strconv.QuoteToASCII(pgtext.Clean(pgErr.Message, 300)) +
			" (SQLSTATE " + pgErr.Code + ")"}
		one.dead = []bool{true}
		if err := write(one); err != nil {
			return fmt.Errorf("dead-lettering row %s of %s: %w", f.id[i], f.k[i], err)
		}
	}
	return nil
}
