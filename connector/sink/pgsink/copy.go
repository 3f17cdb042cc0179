package pgsink

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// A first backfill, or the drain of a backlog, hands the warehouse batches of rows it does not
// hold yet. For those the upsert's version guard decides nothing, and COPY writes them for
// less: no parameter arrays unnested, no speculative insertion per row, the heap written in
// multi-row batches. So a batch of at least copyMinRows upserts is first tried with COPY
// (copyRows). COPY cannot skip or update a row the table holds: it then fails as a whole,
// nothing of it lands, and the batch is written by the upsert as before. To avoid paying for
// a failed COPY (its rows are in the WAL before the conflict stops it), a few rows of the batch
// are looked up first, and a table whose batch met a held row goes back to the upsert alone
// for its next copyPauseBatches batches: a warehouse that mostly takes updates pays one
// short look-up per that many batches. The look-up is planned for each run: a plan cached
// while the table was empty would scan it whole once it is not (see the ledger's copyRecord).
const (
	// copyMinRows: smaller batches are not worth COPY's extra round trips.
	copyMinRows = 100
	// copyPauseBatches: batches of a table written by the upsert after a COPY was refused.
	copyPauseBatches = 64
	// copySampleRows: rows of a batch looked up before it is copied.
	copySampleRows = 8
)

// copyable reports whether st's values go to COPY as they are: no column is sent as text
// and cast in SQL (numeric, arrays), which COPY's binary format cannot take.
func (st *upsertStmt) copyable() bool {
	for _, w := range st.wire {
		if w.cast != "" || w.literal {
			return false
		}
	}
	return true
}

// copyRows writes rows with COPY when the table holds none of the sampled ones, and reports
// whether it did. false with a nil error: the batch must go to the upsert. synced_at takes
// its default, now(), as the upsert sets it.
func (s *Sink) copyRows(ctx context.Context, t *mapping.Table, st *upsertStmt, rows []upsertRow) (bool, error) {
	ids := make([]string, 0, copySampleRows)
	for k := range copySampleRows {
		ids = append(ids, rows[k*(len(rows)-1)/(copySampleRows-1)].item.RowID)
	}
	var held bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+t.PG.QualifiedTable()+` WHERE "id" = ANY($1))`, pgx.QueryExecModeExec, ids).Scan(&held); err != nil {
		return false, err
	}
	if held {
		s.copies.Refused(t)
		return false, nil
	}
	src := make([][]any, len(rows))
	for i, r := range rows {
		src[i] = r.vals
	}
	if _, err := s.pool.CopyFrom(ctx, tableIdentifier(t), st.cols, pgx.CopyFromRows(src)); err != nil {
		// A row the sample missed, or a value the table refuses: the upsert sorts it out.
		s.copies.Refused(t)
		s.log.WithError(err).WithField("table", t.PG.QualifiedTable()).Debug("COPY refused; writing the batch by upsert")
		return false, nil
	}
	s.copied.Add(1)
	return true, nil
}

// tableIdentifier is t's warehouse table as CopyFrom names it.
func tableIdentifier(t *mapping.Table) pgx.Identifier {
	return pgx.Identifier{t.PG.Schema, t.PG.Table}
}
