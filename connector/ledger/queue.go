package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
)

// Queue is the per-sink view of pending rows.
type Queue struct {
	pool *pgxpool.Pool
}

// NewQueue wraps the state store's pending table.
func NewQueue(pool *pgxpool.Pool) *Queue { return &Queue{pool: pool} }

// Claim is one claimed batch: the items (newest ledger versions) and the lease token that
// completing it requires.
type Claim struct {
	Sink     string
	Token    string
	Items    []sink.Item
	Attempts []int // per item: failed attempts so far
}

// A claim moves available_at to the lease's expiry and stamps the owner: the row is not
// claimable again until the lease lapses, so it is never in two in-flight batches of one sink
// (the engine bounds each apply by a deadline shorter than the lease).
const claimSQL = `
WITH c AS (
    SELECT ctid FROM appwrite_sync.pending
    WHERE sink = $1 AND dead_at IS NULL AND available_at <= now()
    ORDER BY enqueued_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), u AS (
    -- by ctid: the rows are locked, so their ctids are stable; a join on the key would
    -- hash the whole pending table on every claim
    UPDATE appwrite_sync.pending p
    SET available_at = now() + $3::interval, lease_owner = $4
    WHERE p.ctid = ANY (ARRAY(SELECT ctid FROM c))
    RETURNING p.table_key, p.row_id, p.attempts
)
SELECT u.table_key, u.row_id, l.seq, l.updated_at, l.op, l.hash, l.row::text, u.attempts
FROM u CROSS JOIN LATERAL (
    SELECT seq, updated_at, op, hash, row FROM appwrite_sync.ledger l
    WHERE l.table_key = u.table_key AND l.row_id = u.row_id) l`

// Claim leases up to limit ready rows of a sink.
func (q *Queue) Claim(ctx context.Context, sinkName string, limit int, lease time.Duration) (*Claim, error) {
	tok := make([]byte, 8)
	_, _ = rand.Read(tok)
	c := &Claim{Sink: sinkName, Token: hex.EncodeToString(tok)}
	rows, err := q.pool.Query(ctx, claimSQL, sinkName, limit, lease, c.Token)
	if err != nil {
		return nil, fmt.Errorf("claiming %s batch: %w", sinkName, err)
	}
	defer rows.Close()
	for rows.Next() {
		var it sink.Item
		var tk, row string
		var op int16
		var attempts int
		if err := rows.Scan(&tk, &it.RowID, &it.Seq, &it.Version.UpdatedAt, &op, &it.Version.Hash, &row, &attempts); err != nil {
			return nil, err
		}
		key, err := connector.ParseTableKey(tk)
		if err != nil {
			return nil, err
		}
		it.Key, it.Version.Op, it.Row = key, connector.Op(op), json.RawMessage(row)
		c.Items = append(c.Items, it)
		c.Attempts = append(c.Attempts, attempts)
	}
	return c, rows.Err()
}

// Outcome of one claimed item.
type Outcome struct {
	Item sink.Item
	// Err nil: applied. Permanent: dead-letter. Other: retry after Backoff.
	Err     error
	Backoff time.Duration
}

// Complete settles a claim in one transaction: applied items leave the queue unless a newer
// version arrived meanwhile (then they stay pending, released for the next claim); permanent
// failures are dead-lettered; the rest are retried after their backoff. Only rows still held
// by this claim's token are touched, so a worker whose lease lapsed changes nothing.
func (q *Queue) Complete(ctx context.Context, c *Claim, outs []Outcome) error {
	var (
		okK, okID                 []string
		okSeq                     []int64
		deadK, deadID, deadWhy    []string
		deadSeq                   []int64
		retryK, retryID, retryWhy []string
		retryAfter                []time.Duration
	)
	for _, o := range outs {
		k := o.Item.Key.String()
		switch {
		case o.Err == nil:
			okK, okID, okSeq = append(okK, k), append(okID, o.Item.RowID), append(okSeq, o.Item.Seq)
		case connector.IsPermanent(o.Err):
			deadK, deadID, deadSeq, deadWhy = append(deadK, k), append(deadID, o.Item.RowID), append(deadSeq, o.Item.Seq), append(deadWhy, truncate(o.Err.Error(), 2000))
		default:
			retryK, retryID, retryWhy, retryAfter = append(retryK, k), append(retryID, o.Item.RowID), append(retryWhy, truncate(o.Err.Error(), 2000)), append(retryAfter, o.Backoff)
		}
	}
	return pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if len(okK) > 0 {
			b.Queue(`DELETE FROM appwrite_sync.pending p WHERE p.ctid = ANY (ARRAY(`+owned+` AND x.seq = d.seq))`,
				c.Sink, okK, okID, okSeq, c.Token)
			// Still owned after that: a newer version arrived in flight; release it for the next claim.
			b.Queue(`UPDATE appwrite_sync.pending p SET available_at = now(), lease_owner = NULL, attempts = 0, last_error = NULL
                WHERE p.ctid = ANY (ARRAY(`+owned+`))`, c.Sink, okK, okID, okSeq, c.Token)
		}
		if len(deadK) > 0 {
			// A newer version that arrived meanwhile gets its own chance instead of the dead letter.
			b.Queue(`UPDATE appwrite_sync.pending p
                SET lease_owner = NULL, available_at = now(), last_error = w.why,
                    dead_at = CASE WHEN p.seq = w.seq THEN now() END,
                    dead_seq = CASE WHEN p.seq = w.seq THEN w.seq END
                FROM (SELECT unnest($6::text[]) AS why, unnest($4::bigint[]) AS seq, unnest($2::text[]) AS k, unnest($3::text[]) AS id) w
                WHERE p.ctid = ANY (ARRAY(`+owned+`)) AND p.table_key = w.k AND p.row_id = w.id`,
				c.Sink, deadK, deadID, deadSeq, c.Token, deadWhy)
		}
		if len(retryK) > 0 {
			b.Queue(`UPDATE appwrite_sync.pending p
                SET lease_owner = NULL, attempts = p.attempts + 1, last_error = w.why, available_at = now() + w.after
                FROM (SELECT unnest($6::text[]) AS why, unnest($7::interval[]) AS after, unnest($2::text[]) AS k, unnest($3::text[]) AS id) w
                WHERE p.ctid = ANY (ARRAY(`+owned+`)) AND p.table_key = w.k AND p.row_id = w.id`,
				c.Sink, retryK, retryID, make([]int64, len(retryK)), c.Token, retryWhy, retryAfter)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// owned selects the ctids of the batch's rows still held by the claim ($1 sink, $2 table
// keys, $3 row ids, $4 seqs, $5 token), one primary-key lookup per row. Driving from the batch
// matters: the planner believes "lease_owner = token" matches one row and would otherwise
// compare every owned row with every batch item (quadratic), or hash the whole table.
const owned = `SELECT x.ctid FROM unnest($2::text[], $3::text[], $4::bigint[]) AS d(k, id, seq)
    CROSS JOIN LATERAL (SELECT ctid, seq FROM appwrite_sync.pending x
        WHERE x.sink = $1 AND x.table_key = d.k AND x.row_id = d.id AND x.lease_owner = $5) x
    WHERE true`

// Release returns a whole claim to the queue after delay without counting an attempt (the
// sink was unavailable: not the rows' fault).
func (q *Queue) Release(ctx context.Context, c *Claim, delay time.Duration, why string) error {
	_, err := q.pool.Exec(ctx, `UPDATE appwrite_sync.pending SET lease_owner = NULL, available_at = now() + $3::interval, last_error = $4
        WHERE sink = $1 AND lease_owner = $2`, c.Sink, c.Token, delay, truncate(why, 2000))
	return err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
