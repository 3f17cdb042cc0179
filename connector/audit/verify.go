package audit

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Report is what Verify found in an intact log.
type Report struct {
	// Entries is the number of entries checked.
	Entries int64
	// First and Last are the first and last seq (0 for an empty log).
	First, Last int64
	// Start is the prev_hash the chain was checked from: GenesisHash when First is 1, else
	// the first kept entry's prev_hash (retention removed the entries before it).
	Start string
	// Head is the last entry's hash ("" for an empty log).
	Head string
}

// BrokenError names the first entry that does not match.
type BrokenError struct {
	Seq    int64
	Reason string
}

func (e *BrokenError) Error() string { return fmt.Sprintf("entry seq %d: %s", e.Seq, e.Reason) }

// verifySQL reads an entry's stored chain fields and its canonical form.
const verifySQL = `SELECT seq, prev_hash, hash, ` + canonicalSQL + ` FROM %s ORDER BY seq`

// Verify reads the warehouse table schema.table in seq order and recomputes the chain. It
// returns a *BrokenError for the first entry whose hash, prev_hash or place in the sequence
// does not match, and other errors when the table cannot be read.
func Verify(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, schema, table string) (Report, error) {
	rows, err := db.Query(ctx, fmt.Sprintf(verifySQL, pgx.Identifier{schema, table}.Sanitize()))
	if err != nil {
		return Report{}, fmt.Errorf("reading %s.%s: %w", schema, table, err)
	}
	defer rows.Close()
	var rep Report
	var seq int64
	var prev, hash, canon string
	for rows.Next() {
		if err := rows.Scan(&seq, &prev, &hash, &canon); err != nil {
			return rep, err
		}
		switch {
		case rep.Entries == 0 && seq == 1 && prev != GenesisHash:
			return rep, &BrokenError{Seq: seq, Reason: fmt.Sprintf("the first entry's prev_hash is %s, not the genesis hash (64 zeros)", prev)}
		case rep.Entries == 0:
			rep.First, rep.Start = seq, prev
		case seq != rep.Last+1:
			return rep, &BrokenError{Seq: seq, Reason: fmt.Sprintf("the entries after seq %d and before seq %d are missing", rep.Last, seq)}
		case prev != rep.Head:
			return rep, &BrokenError{Seq: seq, Reason: fmt.Sprintf("prev_hash %s is not the hash of seq %d (%s)", prev, rep.Last, rep.Head)}
		}
		if want := ChainHash(prev, seq, canon); want != hash {
			return rep, &BrokenError{Seq: seq, Reason: fmt.Sprintf("its content does not match its hash (stored %s, computed %s): the entry was changed after it was recorded", hash, want)}
		}
		rep.Entries++
		rep.Last, rep.Head = seq, hash
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("reading %s.%s: %w", schema, table, err)
	}
	return rep, nil
}
