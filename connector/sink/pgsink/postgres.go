// Package pgsink is the Postgres warehouse sink: one table per mapped Appwrite table in
// warehouse.schema, created from the mapping on start (missing columns are added; nothing is
// ever dropped or rewritten), written with typed multi-row upserts guarded by version:
//
//	INSERT … ON CONFLICT (id) DO UPDATE … WHERE t.updated_at[, t.deleted_at IS NOT NULL] < excluded…
//	    OR (the same updated_at[, delete state] AND (the same version_hash OR t.version_seq <= excluded.version_seq))
//
// A batch of rows the table does not hold yet (a first backfill, a backlog of new rows) is
// written by COPY instead, which costs Postgres less; a held row makes it go to the upsert
// (copy.go).
//
// The same version passes, so that re-applying it (after a mapping change re-projects a table)
// rewrites the row with the new projection, while an older version can never overwrite a newer
// one. Hard deletes are guarded by updated_at (a delete orders after an upsert at the same
// instant, so it removes any row not newer than itself).
//
// Two versions with the same updated_at (and delete state) and different contents are ordered
// by version_seq, the ledger's seq of the version (sink.Item.Seq), not by their content hash:
// per row the seq grows with every version the ledger advances to, so the warehouse follows
// the ledger's decision of a tie (where a version read from the REST API outranks a webhook's,
// see package ledger) and still never goes back to a version the ledger replaced. The seq
// belongs to the state store: after it is rebuilt from nothing (its sequence starts again),
// such a tie in a warehouse that was kept goes to the version written before, until the row
// changes.
package pgsink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/internal/cooldown"
	"github.com/appwrite-sync/appwrite-sync/internal/pgerr"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// Name is the sink's id in the ledger, status and metrics.
const Name = "postgres"

// Sink writes to the warehouse.
type Sink struct {
	pool  *pgxpool.Pool
	m     *mapping.Mapping
	log   *logrus.Entry
	stmts sync.Map // *mapping.Table → *upsertStmt
	// batchSize is Options.BatchSize (0: BatchSizeDefault).
	batchSize int
	// copies: which tables' batches are tried with COPY first (copy.go); copied counts the
	// batches written by COPY (tests read it).
	copies *cooldown.Counter[*mapping.Table]
	copied atomic.Int64
}

// New returns a warehouse sink over pool for the mapping's tables that have a postgres section.
func New(pool *pgxpool.Pool, m *mapping.Mapping, log *logrus.Entry) *Sink {
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	return &Sink{pool: pool, m: m, log: log.WithField("sink", Name), copies: cooldown.New[*mapping.Table](copyPauseBatches)}
}

// Name implements sink.Sink.
func (s *Sink) Name() string { return Name }

// Handles implements sink.Sink.
func (s *Sink) Handles(key connector.TableKey) bool {
	t := s.m.Lookup(key)
	return t != nil && t.PG != nil
}

// Close implements sink.Sink; the pool belongs to the caller.
func (s *Sink) Close() error { return nil }

// pgTypeNames maps mapping types to what format_type() reports for them.
var pgTypeNames = map[string]string{
	"timestamptz": "timestamp with time zone",
}

// Start creates the schema, tables and indexes, and adds columns the mapping gained. A column
// whose type differs from the mapping is an error naming the fix; nothing is altered then.
func (s *Sink) Start(ctx context.Context) error {
	var problems []string
	for _, t := range s.m.Tables {
		if t.PG == nil {
			continue
		}
		for _, stmt := range t.PG.DDL() {
			if _, err := s.pool.Exec(ctx, stmt); err != nil {
				return classify(fmt.Errorf("creating warehouse table %s: %w", t.PG.QualifiedTable(), err))
			}
		}
		existing := map[string]string{}
		rows, err := s.pool.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, t.PG.Schema, t.PG.Table)
		if err != nil {
			return classify(err)
		}
		for rows.Next() {
			var name, typ string
			if err := rows.Scan(&name, &typ); err != nil {
				rows.Close()
				return err
			}
			existing[name] = typ
		}
		rows.Close()
		// version_seq came after the first tables were created: tables from then gain it.
		want := append([]mapping.Column{{Name: mapping.ColVersionSeq, Type: "bigint"}}, t.PG.Columns...)
		if t.PG.Delete == mapping.DeleteSoft {
			want = append(want, mapping.Column{Name: "deleted_at", Type: "timestamptz"})
		}
		for _, c := range want {
			wantType := c.Type
			if n, ok := pgTypeNames[c.Type]; ok {
				wantType = n
			}
			have, ok := existing[c.Name]
			if !ok {
				stmt := fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", t.PG.QualifiedTable(), pgx.Identifier{c.Name}.Sanitize(), c.Type)
				if _, err := s.pool.Exec(ctx, stmt); err != nil {
					return classify(fmt.Errorf("adding column %s to %s: %w", c.Name, t.PG.QualifiedTable(), err))
				}
				s.log.WithFields(logrus.Fields{"table": t.PG.QualifiedTable(), "column": c.Name}).Info("added warehouse column")
				continue
			}
			if have != wantType {
				problems = append(problems, fmt.Sprintf("column %s.%s is %s in the warehouse but the mapping says %s: appwrite-sync never rewrites data; "+
					"either map the values into a new column name, or convert it yourself (ALTER TABLE %s ALTER COLUMN %s TYPE %s USING …) and restart",
					t.PG.QualifiedTable(), c.Name, have, c.Type, t.PG.QualifiedTable(), pgx.Identifier{c.Name}.Sanitize(), c.Type))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// upsertRow is one projected row ready to write.
type upsertRow struct {
	idx     int // index in the claimed batch
	item    sink.Item
	vals    []any
	deleted bool // soft delete: keep values, set deleted_at
}

type delRow struct {
	idx  int
	item sink.Item
}

// Apply implements sink.Sink.
func (s *Sink) Apply(ctx context.Context, items []sink.Item) error {
	type group struct {
		t    *mapping.Table
		ups  []upsertRow
		dels []delRow
	}
	groups := map[*mapping.Table]*group{}
	var order []*group
	batchErr := &connector.BatchError{}
	for i, it := range items {
		t := s.m.Lookup(it.Key)
		if t == nil || t.PG == nil {
			continue // no longer mapped for the warehouse: nothing to do
		}
		g := groups[t]
		if g == nil {
			g = &group{t: t}
			groups[t] = g
			order = append(order, g)
		}
		row, err := t.DecodeRowForPostgres(it.Row)
		if err != nil {
			batchErr.Fail(i, err) // permanent, with its reason
			continue
		}
		del := it.Version.Op == connector.OpDelete || !t.Matches(row)
		if del && t.PG.Delete != mapping.DeleteSoft {
			g.dels = append(g.dels, delRow{idx: i, item: it})
			continue
		}
		vals, err := t.PostgresValues(row)
		if err != nil {
			batchErr.Fail(i, err)
			continue
		}
		created, _ := row.CreatedAt()
		sys := []any{it.RowID, nullTime(created), it.Version.UpdatedAt, it.Version.Hash, it.Seq}
		if t.PG.Delete == mapping.DeleteSoft {
			var d any
			if del {
				d = time.Now().UTC()
			}
			sys = append(sys, d)
		}
		g.ups = append(g.ups, upsertRow{idx: i, item: it, vals: append(sys, vals...), deleted: del})
	}
	for _, g := range order {
		if err := s.upsert(ctx, g.t, g.ups, batchErr); err != nil {
			return err
		}
		if err := s.delete(ctx, g.t, g.dels, batchErr); err != nil {
			return err
		}
	}
	if len(batchErr.Failed) > 0 {
		return batchErr
	}
	return nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func (s *Sink) upsert(ctx context.Context, t *mapping.Table, rows []upsertRow, be *connector.BatchError) error {
	if len(rows) == 0 {
		return nil
	}
	st := s.upsertStatement(t)
	if len(rows) >= copyMinRows && st.copyable() && s.copies.Try(t) {
		copied, err := s.copyRows(ctx, t, st, rows)
		if err != nil {
			return classify(err)
		}
		if copied {
			return nil
		}
	}
	return s.upsertRows(ctx, t, st, rows, be)
}

// upsertRows writes rows in one statement; a data error (a value the column rejects) is
// narrowed down by bisection to the rows at fault, which fail permanently, while the rest land.
func (s *Sink) upsertRows(ctx context.Context, t *mapping.Table, st *upsertStmt, rows []upsertRow, be *connector.BatchError) error {
	args := make([]any, len(st.wire))
	for j, w := range st.wire {
		col := make([]any, len(rows))
		for i, r := range rows {
			v := r.vals[j]
			if w.literal && v != nil {
				lit, err := arrayLiteral(v)
				if err != nil { // a value PostgresValues never returns: the mapping's fault
					return fmt.Errorf("column %s of %s: %w", st.cols[j], t.PG.QualifiedTable(), err)
				}
				v = lit
			}
			col[i] = v
		}
		args[j] = col
	}
	_, err := s.pool.Exec(ctx, st.sql, args...)
	return bisect(err, rows,
		func(rows []upsertRow) error { return s.upsertRows(ctx, t, st, rows, be) },
		func(r upsertRow, err error) error {
			be.Fail(r.idx, connector.Permanent(fmt.Sprintf("warehouse rejected row %s of %s", r.item.RowID, t.PG.QualifiedTable()), err))
			return nil
		})
}

// bisect narrows down a data error (a value a column rejects) that writing rows in one
// statement met: err is that statement's. Each half is written again (write), down to the
// single row at fault, which alone decides what its error becomes. Any other error is
// classified and ends the write.
func bisect[R any](err error, rows []R, write func([]R) error, alone func(R, error) error) error {
	if err == nil {
		return nil
	}
	if !pgerr.IsData(err) {
		return classify(err)
	}
	if len(rows) == 1 {
		return alone(rows[0], err)
	}
	mid := len(rows) / 2
	if err := write(rows[:mid]); err != nil {
		return err
	}
	return write(rows[mid:])
}

func (s *Sink) delete(ctx context.Context, t *mapping.Table, rows []delRow, be *connector.BatchError) error {
	if len(rows) == 0 {
		return nil
	}
	ids := make([]string, len(rows))
	uas := make([]time.Time, len(rows))
	for i, r := range rows {
		ids[i], uas[i] = r.item.RowID, r.item.Version.UpdatedAt
	}
	_, err := s.pool.Exec(ctx, fmt.Sprintf(`DELETE FROM %s AS t USING unnest($1::text[], $2::timestamptz[]) AS d(id, ua)
        WHERE t."id" = d.id AND t."updated_at" <= d.ua`, t.PG.QualifiedTable()), ids, uas)
	if err != nil {
		return classify(err)
	}
	return nil
}

// classify marks errors that mean "the warehouse is down or refuses us" so the engine pauses
// delivery instead of retrying rows one by one.
func classify(err error) error {
	switch {
	case pgerr.IsUnauthorized(err):
		return fmt.Errorf("%w: %v", connector.ErrUnauthorized, err)
	case pgerr.IsUnavailable(err):
		return fmt.Errorf("%w: %v", connector.ErrSinkUnavailable, err)
	case pgerr.Code(err) != "":
		return err
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	if errors.As(err, &netErr) || errors.As(err, &connErr) || errors.Is(err, pgconn.ErrConnClosed) ||
		pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", connector.ErrSinkUnavailable, err)
	}
	return err
}
