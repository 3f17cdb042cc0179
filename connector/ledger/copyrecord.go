package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/pgerr"
)

// A first backfill records pages of rows the ledger has never held. For such a page the
// record statement's version guard decides nothing: every row is inserted, stamped with the
// group's transaction and a fresh seq, and comes back Recorded. The recorder then writes the
// page with COPY instead (copyRecord): no parameter arrays unnested, no speculative insertion
// and its confirmation record per row, the heap written in multi-row batches. Recording a
// page of 1,000 new 1 KiB rows alone took 1.3–1.4× less time that way (BENCHMARKS.md).
//
// COPY has no ON CONFLICT: a row the ledger already holds (a webhook recorded it first, or
// the table was backfilled before) fails the whole COPY with a unique violation and rolls it
// back, and the group is recorded again by the record statement, whose version guard then
// decides as always. Nothing of a failed COPY is committed, so the fall-back sees the ledger as
// it was. After a conflict the table's next copyPauseGroups groups go straight to the record
// statement, so a backfill over rows the ledger partly holds does not pay for a failed COPY
// per page.
const (
	// copyMinRows: smaller groups are not worth COPY's four round trips (BEGIN, the stamps,
	// COPY, COMMIT) against the statement's one.
	copyMinRows = 100
	// copyPauseGroups: groups of a table recorded by the statement after a COPY conflict.
	copyPauseGroups = 64
)

// copyColumns are the ledger columns copyRecord writes; recorded_at and tie take their
// defaults (now(), false), as an insert by the record statement does.
var copyColumns = []string{"table_key", "row_id", "seq", "tx", "updated_at", "op", "hash", "sequence", "action", "source", "authoritative"}

// copyable reports whether a group may be recorded by copyRecord: a large enough group of
// upserts read from the REST API only (a webhook's change may meet a tombstone horizon the
// statement checks), no row history, audit entries or links to write with it (they share the
// statement's transaction), the duplicate probe off (the last group of reads of each table
// held no duplicates: a repeated backfill's rows are all in the ledger) and no recent COPY
// conflict on their tables.
func (r *Recorder) copyable(winners []*request, hist *historyGroup, aud *auditGroup, links func(context.Context, *pgx.Conn) error) bool {
	if len(winners) < copyMinRows || hist != nil || aud != nil || links != nil {
		return false
	}
	for _, q := range winners {
		if !q.ch.Authoritative || q.ch.Op != connector.OpUpsert {
			return false
		}
	}
	r.dupsMu.Lock()
	defer r.dupsMu.Unlock()
	ok := true
	seen := make(map[string]bool, 1)
	for _, q := range winners {
		if seen[q.table] {
			continue
		}
		seen[q.table] = true
		if r.readDups[q.table] {
			ok = false
		}
		if !r.copyPause.Try(q.table) { // counts every table's pause down, as a try
			ok = false
		}
	}
	return ok
}

// copyRecord inserts the group's rows with COPY in one transaction, after taking the
// transaction's id and one seq per row (in the group's order, as the statement draws them).
// conflict is true when the ledger already held one of the rows: nothing was written, and the
// group must go through the record statement.
//
// A failed COPY has written the heap tuples of the rows before the conflict to the WAL (up to
// a whole page of 1 KiB rows). So the same query that takes the stamps first looks up a few
// of the group's rows (copySample), and a group of which one is held is not copied at all: a
// repeated backfill, whose pages are all held, then pays one short look-up per page until its
// first results turn the duplicate probe on, instead of a failed COPY (4.5 MB of WAL for the
// four pages in flight). The look-up is planned for each run (the unnamed statement), as
// lostSQL is: a plan cached while the ledger was small joined it by a full scan, which took
// 50 ms a page by the end of a 100,000-row backfill. A conflict the sample misses (a row a webhook recorded) still fails
// the COPY, which is then rolled back.
func (r *Recorder) copyRecord(ctx context.Context, winners []*request) (conflict bool, err error) {
	sampleTables, sampleIDs := copySample(winners)
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var xid *uint64 // NULL when held
		var seqs []int64
		var held bool
		if err := tx.QueryRow(ctx, `SELECT h.held, CASE WHEN NOT h.held THEN pg_current_xact_id() END,
                CASE WHEN NOT h.held THEN array(SELECT nextval('appwrite_sync.version_seq') FROM generate_series(1, $1)) END
            FROM (SELECT EXISTS (SELECT 1 FROM unnest($2::text[], $3::text[]) AS s(table_key, row_id)
                JOIN appwrite_sync.ledger l ON l.table_key = s.table_key AND l.row_id = s.row_id) AS held) h`,
			pgx.QueryExecModeExec, len(winners), sampleTables, sampleIDs).Scan(&held, &xid, &seqs); err != nil {
			return err
		}
		if held {
			r.copyHeld.Add(1)
			return errCopyHeld
		}
		if xid == nil || len(seqs) != len(winners) {
			return fmt.Errorf("took %d seqs for %d rows", len(seqs), len(winners))
		}
		src := &copySource{winners: winners, seqs: seqs, xid: *xid, i: -1, vals: make([]any, len(copyColumns))}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"appwrite_sync", "ledger"}, copyColumns, src)
		return err
	})
	if err == nil {
		r.copied.Add(1)
	}
	if errors.Is(err, errCopyHeld) || pgerr.IsUniqueViolation(err, "ledger_pkey") {
		for _, q := range winners {
			r.copyPause.Refused(q.table)
		}
		return true, nil
	}
	return false, err
}

// errCopyHeld: copySample found a row the ledger holds (copyRecord's transaction rolls back).
var errCopyHeld = errors.New("the ledger holds rows of the group")

// copySampleRows is how many rows of a group copyRecord looks up before copying it.
const copySampleRows = 8

// copySample picks copySampleRows rows spread over the group (its first and last included).
func copySample(winners []*request) (tables, ids []string) {
	n := len(winners)
	for k := range copySampleRows {
		q := winners[k*(n-1)/(copySampleRows-1)]
		tables, ids = append(tables, q.table), append(ids, q.ch.RowID)
	}
	return tables, ids
}

// copySource feeds a group to CopyFrom, one reused slice of values per row (pgx encodes a
// row before asking for the next).
type copySource struct {
	winners []*request
	seqs    []int64
	xid     uint64
	i       int
	vals    []any
}

func (s *copySource) Next() bool { s.i++; return s.i < len(s.winners) }

func (s *copySource) Values() ([]any, error) {
	q := s.winners[s.i]
	var sequence any // NULL when the read had none
	if q.ch.Sequence != "" {
		sequence = q.ch.Sequence
	}
	v := s.vals
	v[0], v[1], v[2], v[3], v[4], v[5] = q.table, q.ch.RowID, s.seqs[s.i], s.xid, q.ch.UpdatedAt, int16(q.ch.Op)
	v[6], v[7], v[8], v[9], v[10] = q.hash, sequence, q.ch.Action, []byte(q.ch.Row), q.ch.Authoritative
	return v, nil
}

func (s *copySource) Err() error { return nil }
