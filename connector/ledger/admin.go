package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtext"
)

// Admin answers the admin API's questions about the ledger: status, dead letters,
// quarantine. It also runs maintenance (tombstone sweep, re-projection).
type Admin struct {
	pool *pgxpool.Pool
}

// NewAdmin wraps the state store.
func NewAdmin(pool *pgxpool.Pool) *Admin { return &Admin{pool: pool} }

// SinkCounts is the queue's view of one sink.
type SinkCounts struct {
	Pending    int64   `json:"pending"`
	DeadLetter int64   `json:"dead_letter"`
	LagSeconds float64 `json:"lag_seconds"`
}

// TableCounts counts a table's rows in the ledger.
type TableCounts struct {
	Rows       int64 `json:"rows"`
	Tombstones int64 `json:"tombstones"`
}

// Counts returns pending/dead-letter/lag per sink (for the given sinks, zero when empty),
// the quarantine size and per-table ledger counts (a scan of the ledger: for status, not for
// every metrics scrape).
func (a *Admin) Counts(ctx context.Context, sinks []string) (map[string]SinkCounts, int64, map[string]TableCounts, error) {
	out, q, err := a.SinkCounts(ctx, sinks)
	if err != nil {
		return nil, 0, nil, err
	}
	tables := map[string]TableCounts{}
	rows, err := a.pool.Query(ctx, `SELECT table_key, count(*) FILTER (WHERE op = 1), count(*) FILTER (WHERE op = 2)
        FROM appwrite_sync.ledger GROUP BY table_key`)
	if err != nil {
		return nil, 0, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var c TableCounts
		if err := rows.Scan(&k, &c.Rows, &c.Tombstones); err != nil {
			return nil, 0, nil, err
		}
		tables[k] = c
	}
	return out, q, tables, rows.Err()
}

// SinkCounts returns pending/dead-letter/lag per sink and the quarantine size: index range
// counts only, cheap enough for a periodic metrics refresh.
//
// Postgres plans the pending count without knowing where the cursor is (it guesses a third
// of the ledger) and keeps that plan on the connection: planned while the ledger was small,
// it was a sequential scan, which then read the whole ledger on every refresh as it grew. The
// statement therefore runs with sequential scans disabled; the index serves every sink, the
// one without a cursor (everything pending) included.
func (a *Admin) SinkCounts(ctx context.Context, sinks []string) (map[string]SinkCounts, int64, error) {
	out := make(map[string]SinkCounts, len(sinks))
	for _, s := range sinks {
		out[s] = SinkCounts{}
	}
	// pending: log entries after the sink's cursor plus rows waiting in its retry table; lag:
	// age of the oldest of them. A sink without a cursor has not started: everything is pending.
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT s.sink,
            (SELECT count(*) FROM appwrite_sync.ledger l WHERE (l.tx, l.seq) > (COALESCE(c.tx, '0'), COALESCE(c.seq, 0)))
              + (SELECT count(*) FROM appwrite_sync.sink_retry r WHERE r.sink = s.sink AND r.dead_at IS NULL),
            (SELECT count(*) FROM appwrite_sync.sink_retry r WHERE r.sink = s.sink AND r.dead_at IS NOT NULL),
            COALESCE(EXTRACT(EPOCH FROM now() - LEAST(
                (SELECT l.recorded_at FROM appwrite_sync.ledger l WHERE (l.tx, l.seq) > (COALESCE(c.tx, '0'), COALESCE(c.seq, 0))
                    ORDER BY l.tx, l.seq LIMIT 1),
                (SELECT min(r.enqueued_at) FROM appwrite_sync.sink_retry r WHERE r.sink = s.sink AND r.dead_at IS NULL))), 0)::float8
        FROM unnest($1::text[]) AS s(sink) LEFT JOIN appwrite_sync.sink_cursor c USING (sink)`, sinks)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			var c SinkCounts
			if err := rows.Scan(&s, &c.Pending, &c.DeadLetter, &c.LagSeconds); err != nil {
				return err
			}
			out[s] = c
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, err
	}
	var q int64
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.quarantine WHERE replayed_at IS NULL`).Scan(&q); err != nil {
		return nil, 0, err
	}
	return out, q, nil
}

// HistoryBacklog returns how many row-history versions the history delivery of sinkName
// (HistoryWriter.Name) has not delivered yet, and the age of the oldest of them (0 when
// none): the row history's part of /admin/status. A delivery that has not started has
// everything pending. Like SinkCounts it walks the log's index from the cursor (history_log),
// never the whole table, which keeps every version until its retention.
func (a *Admin) HistoryBacklog(ctx context.Context, sinkName string) (pending int64, lag time.Duration, err error) {
	var secs float64
	err = pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(h.recorded_at)), 0)::float8
FROM (VALUES ($1::text)) AS s(sink) LEFT JOIN appwrite_sync.history_cursor c USING (sink)
JOIN appwrite_sync.history h ON (h.tx, h.seq) > (COALESCE(c.tx, '0'), COALESCE(c.seq, 0))`, sinkName).Scan(&pending, &secs)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("counting undelivered row history: %w", err)
	}
	return pending, time.Duration(secs * float64(time.Second)), nil
}

// DeadLetter is one dead-lettered row.
type DeadLetter struct {
	Sink     string    `json:"sink"`
	Table    string    `json:"table"`
	RowID    string    `json:"row_id"`
	Seq      int64     `json:"seq"`
	Reason   string    `json:"reason"`
	Attempts int       `json:"attempts"`
	DeadAt   time.Time `json:"dead_at"`
}

// DeadLetters lists the first limit dead-lettered rows, oldest first, optionally for one sink
// and/or table (DeadLetterPage pages on).
func (a *Admin) DeadLetters(ctx context.Context, sinkName, table string, limit int) ([]DeadLetter, error) {
	list, _, err := a.DeadLetterPage(ctx, DeadLetterQuery{Sink: sinkName, Table: table, Limit: limit})
	return list, err
}

// ReplayDeadLetters makes dead-lettered rows pending again (all, or of one sink/table/row).
// They are applied with the current mapping: fix the mapping or the sink first.
func (a *Admin) ReplayDeadLetters(ctx context.Context, sinkName, table, rowID string) (int64, error) {
	tag, err := a.pool.Exec(ctx, `UPDATE appwrite_sync.sink_retry
        SET dead_at = NULL, attempts = 0, available_at = now(), enqueued_at = now()
        WHERE dead_at IS NOT NULL AND ($1 = '' OR sink = $1) AND ($2 = '' OR table_key = $2) AND ($3 = '' OR row_id = $3)`,
		sinkName, table, rowID)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// Quarantined is one stored request.
type Quarantined struct {
	ID           int64             `json:"id"`
	Webhook      string            `json:"webhook"`
	Reason       string            `json:"reason"`
	Headers      map[string]string `json:"headers"`
	Body         string            `json:"body,omitempty"`
	ReceivedAt   time.Time         `json:"received_at"`
	ReplayedAt   *time.Time        `json:"replayed_at,omitempty"`
	ReplayResult string            `json:"replay_result,omitempty"`
}

// Quarantine stores a validly signed request that could not be decoded or mapped.
func (a *Admin) Quarantine(ctx context.Context, webhook, reason string, headers map[string]string, body []byte) (int64, error) {
	h, _ := json.Marshal(headers)
	var id int64
	err := a.pool.QueryRow(ctx, `INSERT INTO appwrite_sync.quarantine (webhook, reason, headers, body) VALUES ($1, $2, $3, $4) RETURNING id`,
		webhook, pgtext.Clean(reason, maxErrorText), h, body).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return id, nil
}

// ListQuarantine lists the first limit requests not yet replayed successfully (all when
// includeReplayed); QuarantinePage pages on.
func (a *Admin) ListQuarantine(ctx context.Context, includeReplayed, withBody bool, limit int) ([]Quarantined, error) {
	list, _, err := a.QuarantinePage(ctx, QuarantineQuery{IncludeReplayed: includeReplayed, WithBody: withBody, Limit: limit})
	return list, err
}

// MarkReplayed records the outcome of replaying a quarantined request. A success hides it
// from the default listing; a failure keeps it with the new reason.
func (a *Admin) MarkReplayed(ctx context.Context, id int64, ok bool, result string) error {
	result = pgtext.Clean(result, maxErrorText)
	if ok {
		_, err := a.pool.Exec(ctx, `UPDATE appwrite_sync.quarantine SET replayed_at = now(), replay_result = $2 WHERE id = $1`, id, result)
		return err
	}
	_, err := a.pool.Exec(ctx, `UPDATE appwrite_sync.quarantine SET replay_result = $2 WHERE id = $1`, id, result)
	return err
}

// horizonGrace is how long a raised tombstone horizon must have been committed before the
// tombstones it covers are removed: longer than any record statement can run (a group gives up
// after 10 s), so that none still reads the ledger with a snapshot taken before the horizon
// rose. Such a statement would see neither the horizon nor, once removed, the tombstone.
const horizonGrace = 5 * time.Minute

// TombstoneRetentionDefault is serve's SweepTombstones retention (state.tombstone_retention):
// how long the ledger keeps a deleted row's tombstone, which refuses late, older changes of it.
const TombstoneRetentionDefault = 30 * 24 * time.Hour

// sweepable: delete tombstones recorded before now-retention ($1), of a $updatedAt before that
// too (one set in the future by hand is kept until it passes, so the horizon never runs ahead
// of the clock), that every sink's cursor has passed and that no sink holds for a retry.
const sweepable = `l.op = 2 AND l.recorded_at < now() - $1::interval AND l.updated_at < now() - $1::interval
          AND NOT EXISTS (SELECT 1 FROM appwrite_sync.sink_cursor c WHERE (l.tx, l.seq) > (c.tx, c.seq))
          AND NOT EXISTS (SELECT 1 FROM appwrite_sync.sink_cursor c JOIN appwrite_sync.sink_retry r
              ON r.sink = c.sink AND r.table_key = l.table_key AND r.row_id = l.row_id)`

// SweepTombstones removes the delete tombstones past the retention (see sweepable) that the
// tombstone horizon of their table covers, and then raises each table's horizon to the newest
// $updatedAt of its tombstones past the retention. It returns how many tombstones it removed.
//
// The horizon keeps a replay of a removed row's older upsert from resurrecting it (the record
// statement refuses a webhook upsert of a row the ledger does not hold at or before it; see
// the package documentation). A tombstone is removed only by a sweep after the one that raised
// the horizon over it, once that raise is horizonGrace old: the sweep runs hourly, so
// tombstones leave the ledger one sweep later than their retention.
func (a *Admin) SweepTombstones(ctx context.Context, retention time.Duration) (int64, error) {
	// A removed tombstone's relationship links go with it (a deleted row keeps its links so
	// that a soft-deleted warehouse row keeps its joined values).
	var removed int64
	err := a.pool.QueryRow(ctx, `WITH gone AS (DELETE FROM appwrite_sync.ledger l USING appwrite_sync.ledger_horizon h
        WHERE h.table_key = l.table_key AND l.updated_at <= h.updated_at AND h.raised_at < now() - $2::interval
          AND `+sweepable+` RETURNING l.table_key, l.row_id),
        unlinked AS (DELETE FROM appwrite_sync.ledger_links k USING gone g WHERE k.from_table = g.table_key AND k.from_id = g.row_id)
        SELECT count(*) FROM gone`, retention, horizonGrace).Scan(&removed)
	if err != nil {
		return 0, fmt.Errorf("removing tombstones: %w", err)
	}
	_, err = a.pool.Exec(ctx, `INSERT INTO appwrite_sync.ledger_horizon AS h (table_key, updated_at, raised_at)
        SELECT l.table_key, max(l.updated_at), now() FROM appwrite_sync.ledger l WHERE `+sweepable+`
        GROUP BY l.table_key
        ON CONFLICT (table_key) DO UPDATE SET updated_at = excluded.updated_at, raised_at = excluded.raised_at
        WHERE h.updated_at < excluded.updated_at`, retention)
	if err != nil {
		return removed, fmt.Errorf("raising the tombstone horizon: %w", err)
	}
	return removed, nil
}

// Reproject compares each (sink, table) mapping fingerprint with the one last applied and,
// when it changed (or the sink is new for the table), queues the table's live rows for that
// sink from the stored source rows: no call to Appwrite. tables are the ledger's table keys
// the sink handles, with their current fingerprints. Returns rows queued per table. A sink
// that has never delivered gets the whole log from its start anyway: nothing is queued for it.
func (a *Admin) Reproject(ctx context.Context, sinkName string, fingerprints map[string]string) (map[string]int64, error) {
	out := map[string]int64{}
	tag, err := a.pool.Exec(ctx, `INSERT INTO appwrite_sync.sink_cursor (sink) VALUES ($1) ON CONFLICT DO NOTHING`, sinkName)
	if err != nil {
		return out, fmt.Errorf("re-projecting for %s: %w", sinkName, err)
	}
	fresh := tag.RowsAffected() == 1
	for table, fp := range fingerprints {
		err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
			var old string
			err := tx.QueryRow(ctx, `SELECT fingerprint FROM appwrite_sync.sink_tables WHERE sink = $1 AND table_key = $2 FOR UPDATE`, sinkName, table).Scan(&old)
			if err != nil && err != pgx.ErrNoRows {
				return err
			}
			if err == nil && old == fp {
				return nil
			}
			if !fresh {
				tag, err := tx.Exec(ctx, `INSERT INTO appwrite_sync.sink_retry AS r (sink, table_key, row_id, seq, last_error)
                    SELECT $1, table_key, row_id, seq, 'mapping changed: re-projecting' FROM appwrite_sync.ledger WHERE table_key = $2 AND op = 1
                    ON CONFLICT (sink, table_key, row_id) DO UPDATE SET seq = GREATEST(r.seq, excluded.seq), dead_at = NULL,
                        attempts = 0, available_at = now(), last_error = excluded.last_error`,
					sinkName, table)
				if err != nil {
					return err
				}
				out[table] = tag.RowsAffected()
			}
			_, err = tx.Exec(ctx, `INSERT INTO appwrite_sync.sink_tables (sink, table_key, fingerprint) VALUES ($1, $2, $3)
                ON CONFLICT (sink, table_key) DO UPDATE SET fingerprint = excluded.fingerprint, updated_at = now()`, sinkName, table, fp)
			return err
		})
		if err != nil {
			return out, fmt.Errorf("re-projecting %s for %s: %w", table, sinkName, err)
		}
	}
	return out, nil
}

// LedgerTables lists the table keys present in the ledger, in order. It runs at every start:
// it hops through the primary key from one table to the next (one index probe per table)
// instead of reading the whole ledger, which took 1.5 s for 600,000 rows not in cache.
func (a *Admin) LedgerTables(ctx context.Context) ([]string, error) {
	rows, err := a.pool.Query(ctx, `WITH RECURSIVE t(k) AS (
            (SELECT table_key FROM appwrite_sync.ledger ORDER BY table_key LIMIT 1)
            UNION ALL
            SELECT (SELECT l.table_key FROM appwrite_sync.ledger l WHERE l.table_key > t.k ORDER BY l.table_key LIMIT 1)
            FROM t WHERE t.k IS NOT NULL)
        SELECT k FROM t WHERE k IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
