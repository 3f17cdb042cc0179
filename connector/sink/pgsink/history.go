package pgsink

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// History writes the row history (postgres.history) to each table's <table>_history: one row
// per version, inserted with ON CONFLICT DO NOTHING on the version (id, updated_at, op,
// version_hash), so a version delivered again after a crash or by another replica leaves one
// row. Start creates the tables and their views.
//
// data is the version's mapped warehouse columns as a jsonb object, projected with the mapping
// in effect when the version is delivered, as the main table's row is (a later mapping change
// re-projects the main table, not the versions already kept). A delete keeps the row the
// delete carried (Appwrite sends the deleted row). A version whose values do not convert to
// their columns (which the main table dead-letters) is kept with data NULL, and logged. A
// version that does not match the table's `where` is not written: the warehouse never holds
// rows the mapping filters out.
type History struct {
	pool  *pgxpool.Pool
	m     *mapping.Mapping
	log   *logrus.Entry
	stmts sync.Map // *mapping.Table → *historyStmt
}

// NewHistory returns the history writer of the mapping's tables with postgres.history.
func NewHistory(pool *pgxpool.Pool, m *mapping.Mapping, log *logrus.Entry) *History {
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	return &History{pool: pool, m: m, log: log.WithField("sink", Name+"_history")}
}

// HasHistory reports whether any table of m keeps its history.
func HasHistory(m *mapping.Mapping) bool {
	for _, t := range m.Tables {
		if t.PG != nil && t.PG.History != nil {
			return true
		}
	}
	return false
}

// Name implements ledger.HistoryWriter: the history's id in appwrite_sync.history_cursor.
func (h *History) Name() string { return Name }

// Start implements ledger.HistoryWriter: it creates the history tables and their views
// (idempotent; a table whose history was turned off is left as it is).
func (h *History) Start(ctx context.Context) error {
	for _, t := range h.m.Tables {
		if t.PG == nil {
			continue
		}
		for _, stmt := range t.PG.HistoryDDL() {
			if _, err := h.pool.Exec(ctx, stmt); err != nil {
				return classify(fmt.Errorf("creating history table %s: %w", t.PG.QualifiedHistoryTable(), err))
			}
		}
	}
	return nil
}

// historyStmt is a table's history insert: like upsertStmt, every column sent as one array.
type historyStmt struct {
	sql  string
	wire []wireColumn // of the user columns, after the fixed ones
}

// historyFixed are the fixed parameters of a history insert: the version and has_data.
var historyFixed = []string{"text", "text", "timestamptz", "bytea", "text", "text", "text", "timestamptz", "bool"}

// buildHistory writes
//
//	INSERT INTO <table>_history (id, op, updated_at, version_hash, actor, event, source, recorded_at, data)
//	SELECT h0, …, h7, CASE WHEN h8 THEN (SELECT to_jsonb(x) FROM (SELECT c0 AS "title", …) x) END
//	FROM unnest($1::text[], …) AS u(h0, …, h8, c0, …)
//	ON CONFLICT DO NOTHING
//
// to_jsonb of a row renders each column as its type does (numeric exactly, timestamptz in
// ISO 8601, arrays as arrays), and has no limit on the number of columns (jsonb_build_object
// takes at most 50 pairs).
func buildHistory(p *mapping.PGProjection) *historyStmt {
	st := &historyStmt{}
	params := make([]string, 0, len(historyFixed)+len(p.Columns))
	aliases := make([]string, 0, cap(params))
	for i, typ := range historyFixed {
		params = append(params, "$"+strconv.Itoa(i+1)+"::"+typ+"[]")
		aliases = append(aliases, "h"+strconv.Itoa(i))
	}
	data := make([]string, len(p.Columns))
	for i, c := range p.Columns {
		w := wireFor(c.Type)
		st.wire = append(st.wire, w)
		params = append(params, "$"+strconv.Itoa(len(params)+1)+"::"+w.array+"[]")
		alias := "c" + strconv.Itoa(i)
		aliases = append(aliases, alias)
		v := "u." + alias
		if w.cast != "" {
			v += "::" + w.cast
		}
		data[i] = v + " AS " + pgx.Identifier{c.Name}.Sanitize()
	}
	dataExpr := "NULL::jsonb"
	if len(data) > 0 {
		dataExpr = "CASE WHEN u.h8 THEN (SELECT to_jsonb(x) FROM (SELECT " + strings.Join(data, ", ") + ") x) END"
	}
	st.sql = fmt.Sprintf(`INSERT INTO %s ("id", "op", "updated_at", "version_hash", "actor", "event", "source", "recorded_at", "data") `+
		`SELECT u.h0, u.h1, u.h2, u.h3, u.h4, u.h5, u.h6, u.h7, %s FROM unnest(%s) AS u(%s) ON CONFLICT DO NOTHING`,
		p.QualifiedHistoryTable(), dataExpr, strings.Join(params, ", "), strings.Join(aliases, ", "))
	return st
}

func (h *History) statement(t *mapping.Table) *historyStmt {
	if st, ok := h.stmts.Load(t); ok {
		return st.(*historyStmt)
	}
	st, _ := h.stmts.LoadOrStore(t, buildHistory(t.PG))
	return st.(*historyStmt)
}

// histRow is one version ready to write: the fixed values, then the user columns (nil when
// data is NULL).
type histRow struct {
	fixed [9]any
	vals  []any
}

// WriteHistory implements ledger.HistoryWriter.
func (h *History) WriteHistory(ctx context.Context, vs []ledger.HistoryVersion) error {
	groups := map[*mapping.Table][]histRow{}
	var order []*mapping.Table
	for _, v := range vs {
		t := h.m.Lookup(v.Key)
		if t == nil || t.PG == nil || t.PG.History == nil {
			continue // history turned off since: nothing to write
		}
		r := histRow{fixed: [9]any{v.RowID, v.Version.Op.String(), v.Version.UpdatedAt, v.Version.Hash,
			nullString(v.Actor), nullString(v.Event), v.Source, v.RecordedAt, false}}
		row, err := t.DecodeRowForPostgres(v.Row)
		if err == nil && !t.Matches(row) {
			continue
		}
		if err == nil {
			r.vals, err = t.PostgresValues(row)
		}
		if err != nil {
			h.log.WithFields(logrus.Fields{"table": v.Key.String(), "row_id": v.RowID, "version": v.Version.UpdatedAt}).WithError(err).
				Warn("row history: the version's values do not convert to the mapped columns; kept with data NULL")
			r.vals = nil
		}
		r.fixed[8] = r.vals != nil
		if _, ok := groups[t]; !ok {
			order = append(order, t)
		}
		groups[t] = append(groups[t], r)
	}
	for _, t := range order {
		if err := h.insert(ctx, t, h.statement(t), groups[t]); err != nil {
			return err
		}
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// insert writes rows in one statement. A data error (a value the column rejects) is narrowed
// down by bisection; a version the warehouse still refuses alone is written with data NULL,
// so no value can hold the history back.
func (h *History) insert(ctx context.Context, t *mapping.Table, st *historyStmt, rows []histRow) error {
	args := make([]any, len(historyFixed)+len(st.wire))
	for j := range historyFixed {
		col := make([]any, len(rows))
		for i := range rows {
			col[i] = rows[i].fixed[j]
		}
		args[j] = col
	}
	for j, w := range st.wire {
		col := make([]any, len(rows))
		for i, r := range rows {
			if r.vals == nil {
				continue
			}
			v := r.vals[j]
			if w.literal && v != nil {
				lit, err := arrayLiteral(v)
				if err != nil {
					return fmt.Errorf("column %s of %s: %w", t.PG.Columns[j].Name, t.PG.QualifiedHistoryTable(), err)
				}
				v = lit
			}
			col[i] = v
		}
		args[len(historyFixed)+j] = col
	}
	_, err := h.pool.Exec(ctx, st.sql, args...)
	return bisect(err, rows,
		func(rows []histRow) error { return h.insert(ctx, t, st, rows) },
		func(r histRow, err error) error {
			if r.vals == nil {
				return connector.Permanent(fmt.Sprintf("warehouse refused version %s of row %s in %s", r.fixed[2], r.fixed[0], t.PG.QualifiedHistoryTable()), err)
			}
			h.log.WithFields(logrus.Fields{"table": t.PG.QualifiedHistoryTable(), "row_id": r.fixed[0]}).WithError(err).
				Warn("row history: the warehouse refused the version's values; kept with data NULL")
			r.vals, r.fixed[8] = nil, false
			return h.insert(ctx, t, st, []histRow{r})
		})
}

// historySweepBatch is how many versions one retention statement removes (its own short
// transaction: analysts' queries and delivery do not wait on it).
const historySweepBatch = 1000

// Sweep removes the versions of t's history whose updated_at is before cutoff, in batches, and
// returns how many it removed.
func (h *History) Sweep(ctx context.Context, t *mapping.Table, cutoff time.Time) (int64, error) {
	if t.PG == nil || t.PG.History == nil {
		return 0, nil
	}
	sql := fmt.Sprintf(`DELETE FROM %[1]s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %[1]s WHERE "updated_at" < $1 LIMIT $2))`, t.PG.QualifiedHistoryTable())
	var total int64
	for {
		tag, err := h.pool.Exec(ctx, sql, cutoff, historySweepBatch)
		if err != nil {
			return total, classify(fmt.Errorf("removing history from %s: %w", t.PG.QualifiedHistoryTable(), err))
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
