package ledger

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrBadCursor is a listing cursor this package did not hand out.
var ErrBadCursor = errors.New("not a cursor from a previous page")

// QuarantineQuery selects one page of the quarantine, in arrival (id) order.
type QuarantineQuery struct {
	IncludeReplayed bool  // also requests replayed successfully
	WithBody        bool  // include the raw bodies
	After           int64 // the Next of the previous page; 0 for the first
	Limit           int   // at most this many (at least 1)
}

// QuarantinePage lists one page of the quarantine. next is the After of the following page, 0
// when this one is the last.
func (a *Admin) QuarantinePage(ctx context.Context, q QuarantineQuery) (list []Quarantined, next int64, err error) {
	limit := max(q.Limit, 1)
	// The bodies stay in the database unless asked for: they may be megabytes each.
	rows, err := a.pool.Query(ctx, `SELECT id, webhook, reason, headers, CASE WHEN $4 THEN body END, received_at, replayed_at, COALESCE(replay_result, '')
        FROM appwrite_sync.quarantine WHERE ($1 OR replayed_at IS NULL) AND id > $2 ORDER BY id LIMIT $3`,
		q.IncludeReplayed, q.After, limit+1, q.WithBody)
	if err != nil {
		return nil, 0, err
	}
	list, err = pgx.CollectRows(rows, scanQuarantined)
	if err != nil {
		return nil, 0, err
	}
	if len(list) > limit {
		list = list[:limit]
		next = list[limit-1].ID
	}
	return list, next, nil
}

// QuarantinedRequest reads one quarantined request, body included; ok is false when there is
// no request with that id.
func (a *Admin) QuarantinedRequest(ctx context.Context, id int64) (q Quarantined, ok bool, err error) {
	rows, err := a.pool.Query(ctx, `SELECT id, webhook, reason, headers, body, received_at, replayed_at, COALESCE(replay_result, '')
        FROM appwrite_sync.quarantine WHERE id = $1`, id)
	if err != nil {
		return Quarantined{}, false, err
	}
	q, err = pgx.CollectExactlyOneRow(rows, scanQuarantined)
	if errors.Is(err, pgx.ErrNoRows) {
		return Quarantined{}, false, nil
	}
	return q, err == nil, err
}

func scanQuarantined(r pgx.CollectableRow) (Quarantined, error) {
	var q Quarantined
	var body []byte
	err := r.Scan(&q.ID, &q.Webhook, &q.Reason, &q.Headers, &body, &q.ReceivedAt, &q.ReplayedAt, &q.ReplayResult)
	q.Body = string(body)
	return q, err
}

// QuarantineDrops counts the requests a sweep removed, by cause.
type QuarantineDrops struct {
	Retention int64 // received longer ago than the retention
	Cap       int64 // the oldest beyond the row cap
}

// sweepBatch bounds the rows one DELETE removes, so a sweep after a flood of bad requests
// holds no transaction (and no row locks) for long.
const sweepBatch = 5000

// SweepQuarantine removes the quarantined requests received before now-retention, then the
// oldest beyond maxRows, replayed or not. 0 turns either off. Requests are removed oldest
// first (by id, which follows arrival), a batch per statement.
func (a *Admin) SweepQuarantine(ctx context.Context, retention time.Duration, maxRows int64) (QuarantineDrops, error) {
	var drops QuarantineDrops
	var err error
	if retention > 0 {
		drops.Retention, err = a.deleteQuarantine(ctx, `DELETE FROM appwrite_sync.quarantine WHERE id IN (
            SELECT id FROM appwrite_sync.quarantine WHERE received_at < now() - $1::interval ORDER BY id LIMIT $2)`, retention)
		if err != nil {
			return drops, fmt.Errorf("removing quarantined requests past retention: %w", err)
		}
	}
	if maxRows > 0 {
		// Everything older than the maxRows-th newest request; walks the primary key.
		drops.Cap, err = a.deleteQuarantine(ctx, `DELETE FROM appwrite_sync.quarantine WHERE id IN (
            SELECT id FROM appwrite_sync.quarantine
            WHERE id < (SELECT id FROM appwrite_sync.quarantine ORDER BY id DESC OFFSET $1 - 1 LIMIT 1)
            ORDER BY id LIMIT $2)`, maxRows)
		if err != nil {
			return drops, fmt.Errorf("removing quarantined requests beyond the cap: %w", err)
		}
	}
	return drops, nil
}

func (a *Admin) deleteQuarantine(ctx context.Context, sql string, arg any) (int64, error) {
	var total int64
	for {
		tag, err := a.pool.Exec(ctx, sql, arg, sweepBatch)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < sweepBatch {
			return total, nil
		}
	}
}

// DeadLetterQuery selects one page of dead letters, oldest first.
type DeadLetterQuery struct {
	Sink  string // "" for every sink
	Table string // "database/table"; "" for every table
	After string // the next cursor of the previous page; "" for the first
	Limit int    // at most this many (at least 1)
}

// deadLetterCursor is the position after a dead letter in the listing's order.
type deadLetterCursor struct {
	DeadAt time.Time `json:"d"`
	Sink   string    `json:"s"`
	Table  string    `json:"t"`
	RowID  string    `json:"r"`
}

// DeadLetterPage lists one page of dead-lettered rows. next is the After of the following
// page ("" when this one is the last): an opaque cursor, since the order is by time and key.
func (a *Admin) DeadLetterPage(ctx context.Context, q DeadLetterQuery) (list []DeadLetter, next string, err error) {
	limit := max(q.Limit, 1)
	var after *deadLetterCursor
	if q.After != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.After)
		var c deadLetterCursor
		if err != nil || json.Unmarshal(raw, &c) != nil || c.DeadAt.IsZero() {
			return nil, "", ErrBadCursor
		}
		after = &c
	}
	var at *time.Time
	var sink, table, row string
	if after != nil {
		at, sink, table, row = &after.DeadAt, after.Sink, after.Table, after.RowID
	}
	rows, err := a.pool.Query(ctx, `SELECT sink, table_key, row_id, seq, COALESCE(last_error, ''), attempts, dead_at
        FROM appwrite_sync.sink_retry
        WHERE dead_at IS NOT NULL AND ($1 = '' OR sink = $1) AND ($2 = '' OR table_key = $2)
          AND ($4::timestamptz IS NULL OR (dead_at, sink, table_key, row_id) > ($4, $5, $6, $7))
        ORDER BY dead_at, sink, table_key, row_id LIMIT $3`, q.Sink, q.Table, limit+1, at, sink, table, row)
	if err != nil {
		return nil, "", err
	}
	list, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		err := r.Scan(&d.Sink, &d.Table, &d.RowID, &d.Seq, &d.Reason, &d.Attempts, &d.DeadAt)
		return d, err
	})
	if err != nil {
		return nil, "", err
	}
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		b, _ := json.Marshal(deadLetterCursor{DeadAt: last.DeadAt, Sink: last.Sink, Table: last.Table, RowID: last.RowID})
		next = base64.RawURLEncoding.EncodeToString(b)
	}
	return list, next, nil
}
