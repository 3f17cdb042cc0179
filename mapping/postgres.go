package mapping

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/suggest"
	"github.com/appwrite-sync/appwrite-sync/internal/yamlnode"
)

// System columns of every warehouse table. The sink writes them; user columns may not use
// these names (in any letter case).
const (
	ColID          = "id"           // text primary key: $id
	ColCreatedAt   = "created_at"   // timestamptz: $createdAt
	ColUpdatedAt   = "updated_at"   // timestamptz not null: $updatedAt, the version guard
	ColVersionHash = "version_hash" // bytea not null default '': the version's content hash
	ColVersionSeq  = "version_seq"  // bigint: the ledger's seq of the version, tie-break of equal updated_at
	ColSyncedAt    = "synced_at"    // timestamptz not null default now()
	ColDeletedAt   = "deleted_at"   // timestamptz, only with delete: soft; NULL while live
)

var systemColumns = []string{ColID, ColCreatedAt, ColUpdatedAt, ColVersionHash, ColVersionSeq, ColSyncedAt, ColDeletedAt}

// DeleteMode is what a deleted Appwrite row does to its warehouse row.
type DeleteMode string

const (
	// DeleteHard removes the warehouse row (the default).
	DeleteHard DeleteMode = "hard"
	// DeleteSoft keeps it, with its last values, and sets deleted_at.
	DeleteSoft DeleteMode = "soft"
)

// PGProjection is how a table projects into a warehouse table.
type PGProjection struct {
	// Schema is warehouse.schema (set by New).
	Schema string
	// Table is the warehouse table (default: the Appwrite table id).
	Table string
	// Columns are the user columns in declared order, then the permissions column when
	// `permissions` is configured. System columns are not listed.
	Columns []Column
	Delete  DeleteMode
	// Indexes are the extra indexes declared under postgres.indexes (names resolved).
	Indexes []Index
	// Fingerprint changes whenever anything that shapes the rows or the DDL does (including
	// `where` and `permissions`). Set by New.
	Fingerprint string
	// History is postgres.history: every version of the rows also goes to <table>_history
	// (history.go); nil when off.
	History *History
}

// Column is one user column.
type Column struct {
	Name string
	// Type is the canonical Postgres type, as written in DDL ("double precision", "text[]").
	Type string
	// From is the source path in the row (default: Name); "$permissions" for the permissions
	// column, whose value is the list of read roles.
	From string

	typ  pgType
	path path
	perm bool
}

// IsPermissions reports whether the column holds the read roles of $permissions.
func (c Column) IsPermissions() bool { return c.perm }

// Index is an extra warehouse index.
type Index struct {
	// Name defaults to <table>_<columns>_idx (or _key when unique), shortened with a hash
	// suffix to fit 63 bytes.
	Name    string
	Columns []string
	Unique  bool
	// Using is the access method: btree (default), gin, brin or hash.
	Using string

	at pos
}

var pgKeys = []string{"table", "columns", "delete", "indexes", "history"}

var indexMethods = []string{"btree", "gin", "brin", "hash"}

const typesFix = "supported types: text, bigint, integer, double precision, numeric, boolean, timestamptz, date, jsonb, text[], bigint[]"

// tooLong explains an identifier over Postgres' 63-byte limit (which Postgres would silently
// truncate, so two long names could collide).
func tooLong(name string) string {
	if len(name) > 63 {
		return fmt.Sprintf(" (%d bytes; Postgres allows 63)", len(name))
	}
	return ""
}

func isSystemColumn(name string) bool {
	for _, s := range systemColumns {
		if strings.EqualFold(s, name) {
			return true
		}
	}
	return false
}

func parsePG(d *yamlnode.Node, t *Table, sec *yamlnode.Field) *PGProjection {
	pp := &PGProjection{Table: t.Table, Delete: DeleteHard}
	t.pgTableAt = pos{sec.KeyN.Line, sec.Path}
	p := sec.Path
	if yamlnode.IsNull(sec.Value) {
		errAt(d, sec.KeyN, p, "the postgres section has no columns",
			"add columns: {title: text} (name: type, or name: {from: path, type: ...})")
		return pp
	}
	tableSet, haveColumns := false, false
	var indexesF *yamlnode.Field
	for _, f := range d.Fields(sec.Value, p, pgKeys...) {
		switch f.Key {
		case "table":
			tableSet = true
			pp.Table = d.String(f.Value, f.Path)
			t.pgTableAt = pos{f.Value.Line, f.Path}
			if !identRe.MatchString(pp.Table) {
				errAt(d, f.Value, f.Path, fmt.Sprintf("%q is not a valid Postgres table name%s", d.Shown(f.Value), tooLong(pp.Table)),
					"use letters, digits and _ (not starting with a digit), at most 63 characters")
			}
		case "columns":
			haveColumns = true
			pp.Columns = parseColumns(d, f.Value, f.Path)
		case "delete":
			switch v := d.String(f.Value, f.Path); v {
			case "hard":
				pp.Delete = DeleteHard
			case "soft":
				pp.Delete = DeleteSoft
			default:
				fix := "write hard (delete the warehouse row) or soft (keep it and set deleted_at)"
				if s := suggest.Closest(v, []string{"hard", "soft"}); s != "" {
					fix = fmt.Sprintf("did you mean %s? (%s)", s, fix)
				}
				errAt(d, f.Value, f.Path, fmt.Sprintf("unknown delete mode %q", d.Shown(f.Value)), fix)
			}
		case "indexes":
			indexesF = &f
		case "history":
			pp.History = parseHistory(d, f.Value, f.Path)
		}
	}
	if !tableSet && t.Table != "" && !identRe.MatchString(t.Table) {
		errAt(d, sec.KeyN, p, fmt.Sprintf("the warehouse table defaults to the table id %q, which is not a valid Postgres table name", t.Table),
			"set postgres.table to letters, digits and _ (not starting with a digit), at most 63 characters")
	}
	if !haveColumns {
		errAt(d, sec.KeyN, yamlnode.JoinPath(p, "columns"), "missing columns",
			"add columns: {title: text} (name: type, or name: {from: path, type: ...})")
	}
	if t.perm != "" {
		switch {
		case !identRe.MatchString(t.perm) || isSystemColumn(t.perm):
			errAt(d, sec.KeyN, p, fmt.Sprintf("permissions field %q cannot be a warehouse column name", t.perm),
				"choose a permissions.field of letters, digits and _ that is not a system column")
		case slices.ContainsFunc(pp.Columns, func(c Column) bool { return c.Name == t.perm }):
			errAt(d, sec.KeyN, p, fmt.Sprintf("column %q clashes with the permissions column", t.perm),
				"rename the column, or choose another permissions.field")
		default:
			pp.Columns = append(pp.Columns, Column{Name: t.perm, Type: "text[]", From: "$permissions", typ: tTextArray, perm: true})
		}
	}
	if indexesF != nil {
		pp.Indexes = parseIndexes(d, pp, indexesF.Value, indexesF.Path)
	}
	return pp
}

func parseColumns(d *yamlnode.Node, n *yaml.Node, p string) []Column {
	fs := d.Fields(n, p)
	if n != nil && n.Kind == yaml.MappingNode && len(fs) == 0 && len(n.Content) == 0 {
		errAt(d, n, p, "no columns", "add columns: {title: text} (name: type, or name: {from: path, type: ...})")
	}
	cols := make([]Column, 0, len(fs))
	for _, f := range fs {
		c := Column{Name: f.Key, From: f.Key}
		ok := true
		switch {
		case !identRe.MatchString(f.Key):
			errAt(d, f.KeyN, f.Path, fmt.Sprintf("%q is not a valid column name%s", f.Key, tooLong(f.Key)),
				"use letters, digits and _ (not starting with a digit), at most 63 characters; map other sources with {from: path, type: ...}")
			ok = false
		case isSystemColumn(f.Key):
			errAt(d, f.KeyN, f.Path, fmt.Sprintf("column %q is a system column of every warehouse table", f.Key),
				"rename it, e.g. {app_"+f.Key+": {from: "+f.Key+", type: ...}}; system columns: "+strings.Join(systemColumns, ", "))
			ok = false
		}
		var typeN *yaml.Node
		typeP := f.Path
		switch f.Value.Kind {
		case yaml.ScalarNode:
			typeN = f.Value
		case yaml.MappingNode:
			for _, g := range d.Fields(f.Value, f.Path, "from", "type") {
				switch g.Key {
				case "from":
					c.From = d.String(g.Value, g.Path)
				case "type":
					typeN, typeP = g.Value, g.Path
				}
			}
			if typeN == nil {
				errAt(d, f.Value, yamlnode.JoinPath(f.Path, "type"), "missing type", typesFix)
				continue
			}
		default:
			errAt(d, f.Value, f.Path, "must be a type or {from: path, type: ...}", typesFix)
			continue
		}
		typ, name, good := parseType(d, typeN, typeP)
		pa, err := compilePath(c.From)
		if err != nil {
			errAt(d, f.Value, f.Path, fmt.Sprintf("invalid source path %q: %v", c.From, err),
				"write a dotted path such as author.name")
			good = false
		}
		if !ok || !good {
			continue
		}
		c.Type, c.typ, c.path = name, typ, pa
		cols = append(cols, c)
	}
	return cols
}

func parseType(d *yamlnode.Node, n *yaml.Node, p string) (pgType, string, bool) {
	if n.Kind != yaml.ScalarNode || yamlnode.IsNull(n) {
		errAt(d, n, p, "missing type", typesFix)
		return 0, "", false
	}
	norm := normalizeType(n.Value)
	if t, ok := pgTypes[norm]; ok {
		return t, norm, true
	}
	problem := fmt.Sprintf("unknown type %q", d.Shown(n))
	if a, ok := typeAliases[norm]; ok {
		problem += fmt.Sprintf(" (write %s)", a)
	} else if s := suggest.Closest(norm, typeNames); s != "" {
		problem += fmt.Sprintf(" (did you mean %s?)", s)
	}
	errAt(d, n, p, problem, typesFix)
	return 0, "", false
}

func parseIndexes(d *yamlnode.Node, pp *PGProjection, n *yaml.Node, p string) []Index {
	if n.Kind != yaml.SequenceNode {
		errAt(d, n, p, "must be a list", "write e.g. indexes: [{columns: [author_name]}, {columns: [slug], unique: true}]")
		return nil
	}
	available := []string{ColID, ColCreatedAt, ColUpdatedAt, ColSyncedAt}
	if pp.Delete == DeleteSoft {
		available = append(available, ColDeletedAt)
	}
	for _, c := range pp.Columns {
		available = append(available, c.Name)
	}
	var out []Index
	for i, c := range n.Content {
		ip := fmt.Sprintf("%s[%d]", p, i)
		ix := Index{Using: "btree", at: pos{c.Line, ip}}
		ok := true
		var colsN *yaml.Node
		for _, f := range d.Fields(c, ip, "name", "columns", "unique", "using") {
			switch f.Key {
			case "name":
				ix.Name = d.String(f.Value, f.Path)
				ix.at = pos{f.Value.Line, f.Path}
				if !identRe.MatchString(ix.Name) {
					errAt(d, f.Value, f.Path, fmt.Sprintf("%q is not a valid index name%s", d.Shown(f.Value), tooLong(ix.Name)),
						"use letters, digits and _ (not starting with a digit), at most 63 characters, or leave name out")
					ok = false
				}
			case "columns":
				colsN = f.Value
				ix.Columns = d.StringList(f.Value, f.Path)
				seen := map[string]bool{}
				for j, col := range ix.Columns {
					cp := fmt.Sprintf("%s[%d]", f.Path, j)
					if seen[col] {
						errAt(d, elem(f.Value, j), cp, fmt.Sprintf("column %q is listed twice", col), "list each column once")
						ok = false
					}
					seen[col] = true
					if !slices.Contains(available, col) {
						fix := "index columns of this table: " + strings.Join(available, ", ")
						if s := suggest.Closest(col, available); s != "" {
							fix = fmt.Sprintf("did you mean %q? (%s)", s, fix)
						}
						errAt(d, elem(f.Value, j), cp, fmt.Sprintf("no column %q in this table", col), fix)
						ok = false
					}
				}
			case "unique":
				ix.Unique = d.Bool(f.Value, f.Path)
			case "using":
				ix.Using = strings.ToLower(d.String(f.Value, f.Path))
				if !slices.Contains(indexMethods, ix.Using) {
					errAt(d, f.Value, f.Path, fmt.Sprintf("unknown index method %q", d.Shown(f.Value)),
						"use one of "+strings.Join(indexMethods, ", "))
					ok = false
				}
			}
		}
		if c.Kind != yaml.MappingNode {
			continue // reported by Fields
		}
		if len(ix.Columns) == 0 {
			at := c
			if colsN != nil {
				at = colsN
			}
			errAt(d, at, yamlnode.JoinPath(ip, "columns"), "an index needs columns", "write columns: [a, b]")
			continue
		}
		if ix.Unique && ix.Using != "btree" {
			errAt(d, c, ip, fmt.Sprintf("a %s index cannot be unique", ix.Using), "remove unique, or use btree")
			ok = false
		}
		if !ok {
			continue
		}
		if ix.Name == "" {
			suffix := "_idx"
			if ix.Unique {
				suffix = "_key"
			}
			ix.Name = relName(pp.Table, strings.Join(ix.Columns, "_")+suffix)
		}
		out = append(out, ix)
	}
	return out
}

// relName names a relation derived from a table: table_suffix, shortened to Postgres' 63
// bytes with a hash so two long names never collide.
func relName(table, suffix string) string {
	n := table + "_" + suffix
	if len(n) <= 63 {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return n[:54] + "_" + hex.EncodeToString(sum[:4])
}

// claimRelations registers the relations this table creates in the schema (table, primary key
// index, indexes) and reports clashes: tables and indexes share one namespace per schema.
func (t *Table) claimRelations(names map[string]string) connector.ConfigErrors {
	var errs connector.ConfigErrors
	pp := t.PG
	claim := func(name, what string, at pos) {
		if prev, ok := names[name]; ok {
			errs = append(errs, connector.ConfigError{File: t.File, Line: at.line, Path: at.path,
				Problem: fmt.Sprintf("%s %q clashes with %s in schema %q", what, name, prev, pp.Schema),
				Fix:     "choose another name"})
			return
		}
		names[name] = fmt.Sprintf("%s of %s (%s)", what, t.Key(), t.at())
	}
	claim(pp.Table, "table", t.pgTableAt)
	if len(pp.Table)+len("_pkey") <= 63 {
		claim(pp.Table+"_pkey", "primary key index", t.pgTableAt)
	}
	claim(pp.UpdatedAtIndex(), "index", t.pgTableAt)
	if pp.History != nil {
		for _, r := range pp.historyRelations() {
			claim(r.name, r.what, t.pgTableAt)
		}
	}
	for _, ix := range pp.Indexes {
		claim(ix.Name, "index", ix.at)
	}
	return errs
}

// QualifiedTable returns the quoted "schema"."table".
func (p *PGProjection) QualifiedTable() string {
	return pgx.Identifier{p.Schema, p.Table}.Sanitize()
}

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

// DDL returns idempotent statements that create the schema, the table (system columns, the
// mapped columns, synced_at, and deleted_at with delete: soft), the updated_at index and the
// declared indexes. Identifiers are always quoted. Columns a newer mapping adds to an existing
// table are not covered (ALTER TABLE would take an exclusive lock on every start): the sink
// compares the catalog with Columns and adds only what is missing.
func (p *PGProjection) DDL() []string {
	q := p.QualifiedTable()
	cols := []string{
		quote(ColID) + " text PRIMARY KEY",
		quote(ColCreatedAt) + " timestamptz",
		quote(ColUpdatedAt) + " timestamptz NOT NULL",
		quote(ColVersionHash) + " bytea NOT NULL DEFAULT ''::bytea",
		quote(ColVersionSeq) + " bigint",
	}
	for _, c := range p.Columns {
		cols = append(cols, quote(c.Name)+" "+c.Type)
	}
	cols = append(cols, quote(ColSyncedAt)+" timestamptz NOT NULL DEFAULT now()")
	if p.Delete == DeleteSoft {
		cols = append(cols, quote(ColDeletedAt)+" timestamptz")
	}
	stmts := []string{
		"CREATE SCHEMA IF NOT EXISTS " + quote(p.Schema),
		"CREATE TABLE IF NOT EXISTS " + q + " (\n  " + strings.Join(cols, ",\n  ") + "\n)",
	}
	stmts = append(stmts, "CREATE INDEX IF NOT EXISTS "+quote(p.UpdatedAtIndex())+" ON "+q+" ("+quote(ColUpdatedAt)+")")
	for _, ix := range p.Indexes {
		var b strings.Builder
		b.WriteString("CREATE ")
		if ix.Unique {
			b.WriteString("UNIQUE ")
		}
		b.WriteString("INDEX IF NOT EXISTS " + quote(ix.Name) + " ON " + q)
		if ix.Using != "" && ix.Using != "btree" {
			b.WriteString(" USING " + ix.Using)
		}
		qc := make([]string, len(ix.Columns))
		for i, c := range ix.Columns {
			qc[i] = quote(c)
		}
		b.WriteString(" (" + strings.Join(qc, ", ") + ")")
		stmts = append(stmts, b.String())
	}
	return stmts
}

// UpdatedAtIndex returns the name of the index on updated_at that every warehouse table has.
func (p *PGProjection) UpdatedAtIndex() string { return relName(p.Table, "updated_at_idx") }

// PostgresValues returns the values of the user columns (PG.Columns, in order), converted to
// the Go values pgx encodes into each declared type:
//
//	text             string  (JSON strings; numbers and booleans as their JSON text)
//	bigint           int64   (whole JSON numbers, or strings holding one: "12", "5.0", "1e3")
//	integer          int32   (same, within the int32 range)
//	double precision float64 (JSON numbers, or strings holding one)
//	numeric          string  (the number's exact decimal text; strings holding a number)
//	boolean          bool    (true/false, or the strings "true"/"false")
//	timestamptz      time.Time (RFC 3339 with an offset, as Appwrite writes datetimes)
//	date             time.Time (midnight UTC of "2026-03-26", or of a datetime's date as written)
//	jsonb            json.RawMessage (any JSON value)
//	text[], bigint[] []string, []int64 ([]*string, []*int64 when the list holds nulls)
//
// A missing path or a JSON null gives nil (SQL NULL). The permissions column gets the read
// roles ([]string). A value that does not convert is never coerced: the error is
// connector.Permanent and names every offending column, its value (shortened) and the type.
func (t *Table) PostgresValues(r Row) ([]any, error) {
	pp := t.PG
	if pp == nil {
		return nil, fmt.Errorf("table %s is not mapped to postgres", t.Key())
	}
	out := make([]any, len(pp.Columns))
	var problems []string
	for i := range pp.Columns {
		c := &pp.Columns[i]
		if c.perm {
			out[i] = readRoles(r["$permissions"])
			continue
		}
		v, _ := c.path.get(r)
		if v == nil {
			continue
		}
		cv, err := convert(c.typ, v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("column %q: value %s does not convert to %s (%v)", c.Name, showValue(v), c.Type, err))
			continue
		}
		out[i] = cv
	}
	if problems != nil {
		return nil, connector.Permanent(strings.Join(problems, "; "), nil)
	}
	return out, nil
}

// showValue renders a JSON value for a message, shortened to about 60 bytes.
func showValue(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	s := ""
	if err := enc.Encode(v); err != nil {
		s = fmt.Sprint(v)
	} else {
		s = strings.TrimSuffix(b.String(), "\n")
	}
	if len(s) <= 64 {
		return s
	}
	cut := 60
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
