package pgsink

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// upsertStmt is a table's upsert: one statement for any number of rows, the values of each
// column sent as one array and unnested, so Postgres parses and plans it once per connection
// (pgx prepares it on first use) instead of once per batch size. With a multi-row VALUES list
// every batch size was a new statement text, and delivery's batches under load (about 40
// rows) were each parsed, described and planned in two round trips.
type upsertStmt struct {
	sql  string
	cols []string
	wire []wireColumn
}

// wireColumn is how one column's values travel. Most go as an array of the column's own type
// (pgx encodes them in binary). Two kinds go as text[] and are cast in SQL:
//   - numeric: the mapping gives the number's exact decimal text, and pgx has no binary
//     encoding of a Go string into numeric;
//   - array columns (text[], bigint[]): unnest would flatten an array of arrays, so each value
//     is sent as its array literal ('{"a","b"}') and cast back.
type wireColumn struct {
	array   string // element type of the parameter array: "text" for the cast ones
	cast    string // type to cast the unnested value to, "" when none is needed
	literal bool   // send each value as an array literal
}

func wireFor(typ string) wireColumn {
	switch {
	case strings.HasSuffix(typ, "[]"):
		return wireColumn{array: "text", cast: typ, literal: true}
	case typ == "numeric":
		return wireColumn{array: "text", cast: typ}
	default:
		return wireColumn{array: typ}
	}
}

// upsertStatement returns t's upsert, built on first use.
func (s *Sink) upsertStatement(t *mapping.Table) *upsertStmt {
	if st, ok := s.stmts.Load(t); ok {
		return st.(*upsertStmt)
	}
	st, _ := s.stmts.LoadOrStore(t, buildUpsert(t.PG))
	return st.(*upsertStmt)
}

// buildUpsert writes
//
//	INSERT INTO <table> AS t (<cols>, synced_at)
//	SELECT c0, c1, …, now() FROM unnest($1::text[], $2::timestamptz[], …) AS u(c0, c1, …)
//	ON CONFLICT (id) DO UPDATE SET … WHERE <version guard>
//
// for the system columns (id, created_at, updated_at, version_hash, version_seq[, deleted_at])
// followed by the mapped ones, in the order Apply builds each row's values.
func buildUpsert(p *mapping.PGProjection) *upsertStmt {
	st := &upsertStmt{cols: []string{mapping.ColID, mapping.ColCreatedAt, mapping.ColUpdatedAt, mapping.ColVersionHash, mapping.ColVersionSeq}}
	types := []string{"text", "timestamptz", "timestamptz", "bytea", "bigint"}
	soft := p.Delete == mapping.DeleteSoft
	if soft {
		st.cols, types = append(st.cols, mapping.ColDeletedAt), append(types, "timestamptz")
	}
	for _, c := range p.Columns {
		st.cols, types = append(st.cols, c.Name), append(types, c.Type)
	}
	qcols := make([]string, len(st.cols))
	params := make([]string, len(st.cols))
	aliases := make([]string, len(st.cols))
	selects := make([]string, len(st.cols))
	for i, c := range st.cols {
		w := wireFor(types[i])
		st.wire = append(st.wire, w)
		qcols[i] = pgx.Identifier{c}.Sanitize()
		params[i] = "$" + strconv.Itoa(i+1) + "::" + w.array + "[]"
		aliases[i] = "c" + strconv.Itoa(i)
		selects[i] = aliases[i]
		if w.cast != "" {
			selects[i] += "::" + w.cast
		}
	}
	sets := make([]string, 0, len(qcols))
	for _, c := range qcols[1:] {
		sets = append(sets, c+" = excluded."+c)
	}
	// Newer, or at the same instant (and delete state) the same content (re-projection) or a
	// version the ledger advanced to. Rows written before version_seq existed have none: the
	// ledger's order decided them too. The same content passes whatever its seq, so a warehouse
	// kept while the state store is rebuilt from nothing (its sequence starts again) still takes
	// re-projections.
	key := `t."updated_at"`
	excl := `excluded."updated_at"`
	if soft {
		key, excl = `(t."updated_at", t."deleted_at" IS NOT NULL)`, `(excluded."updated_at", excluded."deleted_at" IS NOT NULL)`
	}
	guard := fmt.Sprintf(`(%s < %s OR (%s = %s AND (t."version_hash" = excluded."version_hash" OR COALESCE(t."version_seq", 0) <= excluded."version_seq")))`,
		key, excl, key, excl)
	st.sql = fmt.Sprintf(`INSERT INTO %s AS t (%s, "synced_at") SELECT %s, now() FROM unnest(%s) AS u(%s) `+
		`ON CONFLICT ("id") DO UPDATE SET %s, "synced_at" = now() WHERE %s`,
		p.QualifiedTable(), strings.Join(qcols, ", "), strings.Join(selects, ", "), strings.Join(params, ", "),
		strings.Join(aliases, ", "), strings.Join(sets, ", "), guard)
	return st
}

// arrayLiteral renders a list value of PostgresValues ([]string, []*string, []int64,
// []*int64) as a Postgres array literal: elements double-quoted with \ and " escaped, NULL
// for nil.
func arrayLiteral(v any) (string, error) {
	var b strings.Builder
	b.WriteByte('{')
	sep := func(i int) {
		if i > 0 {
			b.WriteByte(',')
		}
	}
	quoted := func(s string) {
		b.WriteByte('"')
		for i := 0; i < len(s); i++ {
			if s[i] == '"' || s[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[i])
		}
		b.WriteByte('"')
	}
	switch a := v.(type) {
	case []string:
		for i, s := range a {
			sep(i)
			quoted(s)
		}
	case []*string:
		for i, s := range a {
			sep(i)
			if s == nil {
				b.WriteString("NULL")
			} else {
				quoted(*s)
			}
		}
	case []int64:
		for i, n := range a {
			sep(i)
			b.WriteString(strconv.FormatInt(n, 10))
		}
	case []*int64:
		for i, n := range a {
			sep(i)
			if n == nil {
				b.WriteString("NULL")
			} else {
				b.WriteString(strconv.FormatInt(*n, 10))
			}
		}
	default:
		return "", fmt.Errorf("no array literal for %T", v)
	}
	b.WriteByte('}')
	return b.String(), nil
}
