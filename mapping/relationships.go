package mapping

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/suggest"
	"github.com/appwrite-sync/appwrite-sync/internal/yamlnode"
)

// Relationship is one entry of a table's `relationships:`: the column holds links to rows
// of Target.
type Relationship struct {
	// Column is the relationship column of the declaring table.
	Column string
	// Target is the related table. Database "" means the database of the row that links
	// (the declaring table's own, or each row's when it is declared for database "*").
	Target connector.TableKey
	line   int
	path   string
}

// TargetOf returns the table a row of database db links to through r.
func (r Relationship) TargetOf(db string) connector.TableKey {
	if r.Target.Database == "" {
		return connector.TableKey{Database: db, Table: r.Target.Table}
	}
	return r.Target
}

func (r Relationship) String() string {
	if r.Target.Database == "" {
		return r.Column + " -> " + r.Target.Table
	}
	return r.Column + " -> " + r.Target.String()
}

// Relationships returns the relationships the table declares, in declared order.
func (t *Table) Relationships() []Relationship { return t.rels }

// parseRelationships decodes `relationships: {column: table | {table: t, database: d}}`.
func parseRelationships(d *yamlnode.Node, n *yaml.Node, p string) []Relationship {
	if yamlnode.IsNull(n) {
		return nil
	}
	var out []Relationship
	for _, f := range d.Fields(n, p) {
		r := Relationship{Column: f.Key, line: f.KeyN.Line, path: f.Path}
		if f.Key == "" || f.Key[0] == '$' || strings.Contains(f.Key, ".") {
			errAt(d, f.KeyN, f.Path, fmt.Sprintf("%q is not a relationship column", f.Key),
				"name the column of this table that holds the related rows (no $ and no dots)")
			continue
		}
		switch f.Value.Kind {
		case yaml.ScalarNode:
			r.Target.Table = d.String(f.Value, f.Path)
		case yaml.MappingNode:
			for _, g := range d.Fields(f.Value, f.Path, "table", "database") {
				switch g.Key {
				case "table":
					r.Target.Table = d.String(g.Value, g.Path)
				case "database":
					r.Target.Database = d.String(g.Value, g.Path)
					if !connector.ValidID(r.Target.Database) {
						errAt(d, g.Value, g.Path, fmt.Sprintf("%q is not an Appwrite database id", d.Shown(g.Value)),
							"write the related table's database id, or leave database out for this table's database")
					}
				}
			}
		default:
			errAt(d, f.Value, f.Path, "must be a table id or {table: <id>, database: <id>}",
				"write `"+f.Key+": authors` (same database) or `"+f.Key+": {table: authors, database: other}`")
			continue
		}
		if !connector.ValidID(r.Target.Table) {
			errAt(d, f.Value, f.Path, fmt.Sprintf("%q is not an Appwrite table id", r.Target.Table),
				"write the id of the related table, which must also be listed under tables:")
			continue
		}
		out = append(out, r)
	}
	return out
}

// checkRelationships reports relationships to tables the mapping does not list: their rows
// would never be recorded, so the joins would stay null forever.
func (m *Mapping) checkRelationships() connector.ConfigErrors {
	var errs connector.ConfigErrors
	var listed []string
	for _, t := range m.Tables {
		listed = append(listed, t.Key().String())
	}
	for _, t := range m.Tables {
		for _, r := range t.rels {
			if m.relatedListed(t, r) {
				continue
			}
			want := r.TargetOf(t.Database)
			fix := fmt.Sprintf("list the related table under tables: (`- {database: %s, table: %s}`; it needs no sink, its rows are then recorded for joins)",
				want.Database, want.Table)
			if s := suggest.Closest(want.String(), listed); s != "" {
				fix = fmt.Sprintf("did you mean %q? Or %s", s[strings.IndexByte(s, '/')+1:], fix)
			}
			errs = append(errs, connector.ConfigError{File: t.File, Line: r.line, Path: r.path,
				Problem: fmt.Sprintf("relationship %s: table %s is not listed under tables", r.Column, want), Fix: fix})
		}
	}
	return errs
}

// relatedListed reports whether the target of r, declared by t, is mapped.
func (m *Mapping) relatedListed(t *Table, r Relationship) bool {
	if t.Database != "*" || r.Target.Database != "" {
		return m.Lookup(r.TargetOf(t.Database)) != nil
	}
	// Declared for every database: the target is the table of that id in the row's database,
	// mapped by a "*" entry or by an entry per database.
	for _, o := range m.Tables {
		if o.Table == r.Target.Table {
			return true
		}
	}
	return false
}

// RelationshipsOf returns the relationships of the table mapped for key (nil when none).
func (m *Mapping) RelationshipsOf(key connector.TableKey) []Relationship {
	if t := m.Lookup(key); t != nil {
		return t.rels
	}
	return nil
}

// HasRelationships reports whether any mapped table declares a relationship.
func (m *Mapping) HasRelationships() bool {
	for _, t := range m.Tables {
		if len(t.rels) > 0 {
			return true
		}
	}
	return false
}

// IsRelated reports whether rows of key are linked to by some relationship: a change of such
// a row re-projects the rows that link to it.
func (m *Mapping) IsRelated(key connector.TableKey) bool {
	for _, t := range m.Tables {
		for _, r := range t.rels {
			if r.Target.Table != key.Table {
				continue
			}
			if r.Target.Database == key.Database || (r.Target.Database == "" && (t.Database == "*" || t.Database == key.Database)) {
				return true
			}
		}
	}
	return false
}

// JoinDepth is how many relationships deep the projections read: 1 for `author.name`, 2 for
// `author.company.name`; 0 when no table declares a relationship. A table whose default
// Meilisearch selection copies a relationship column counts 1 for it.
func (m *Mapping) JoinDepth() int {
	depth := 0
	for _, t := range m.Tables {
		if len(t.rels) == 0 {
			continue
		}
		depth = max(depth, 1)
		var paths []*path
		if mp := t.Meili; mp != nil {
			for i := range mp.fields {
				paths = append(paths, &mp.fields[i].path)
			}
		}
		if pp := t.PG; pp != nil {
			for i := range pp.Columns {
				paths = append(paths, &pp.Columns[i].path)
			}
		}
		for i := range t.where {
			paths = append(paths, &t.where[i].path)
		}
		for _, p := range paths {
			depth = max(depth, m.pathDepth(t, p))
		}
	}
	return depth
}

// pathDepth counts the relationships p walks through from table t (bounded by the number of
// tables, so a cycle of relationships cannot loop).
func (m *Mapping) pathDepth(t *Table, p *path) int {
	n := 0
	cur := t
	for _, seg := range p.segs {
		if cur == nil || n >= len(m.Tables) {
			break
		}
		var next *Table
		for _, r := range cur.rels {
			if r.Column == seg {
				n++
				db := r.Target.Database
				if db == "" {
					db = cur.Database
				}
				next = m.Lookup(connector.TableKey{Database: db, Table: r.Target.Table})
				break
			}
		}
		if next == nil {
			break
		}
		cur = next
	}
	return n
}

// relSpec is what the fingerprints hash of the relationships: those of t and of every table
// reachable from it, since a path such as author.company.name reads through all of them.
func (m *Mapping) relSpec(t *Table) []string {
	var out []string
	seen := map[*Table]bool{}
	var walk func(*Table)
	walk = func(x *Table) {
		if x == nil || seen[x] {
			return
		}
		seen[x] = true
		for _, r := range x.rels {
			out = append(out, x.Key().String()+"."+r.String())
			db := r.Target.Database
			if db == "" {
				db = x.Database
			}
			walk(m.Lookup(connector.TableKey{Database: db, Table: r.Target.Table}))
		}
	}
	walk(t)
	sort.Strings(out)
	return out
}

// planRelationships renders the relationship graph for the plan; "" when there is none.
func (m *Mapping) planRelationships() string {
	var b strings.Builder
	for _, t := range m.Tables {
		for _, r := range t.rels {
			target := r.TargetOf(t.Database)
			sink := ""
			if tt := m.Lookup(target); tt != nil && tt.Meili == nil && tt.PG == nil {
				sink = "  (recorded for joins only)"
			}
			fmt.Fprintf(&b, "  %s.%s -> %s%s\n", t.Key(), r.Column, target, sink)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	depth := m.JoinDepth()
	return fmt.Sprintf("relationship graph (joins read %d level(s) deep; a change of a related row re-projects the rows linking to it):\n%s", depth, b.String())
}

// Link is one related row a row links to through a relationship column.
type Link struct {
	Column string
	// Ord is the link's place in a to-many list, or -1 for a to-one column holding one id.
	Ord int
	To  connector.TableKey
	ID  string
}

// Links reads the links of a row of table key (a row of t) from its relationship columns: an
// id string, an object with "$id" (its other fields are ignored: the ledger's version of the
// related row is the truth), a list of either, or null. present lists the relationship
// columns the row holds at all: a column the payload leaves out keeps the links recorded
// for it before. A delete's payload is the row as it was, read the same way: a soft-deleted
// warehouse row keeps its joined values.
func (t *Table) Links(key connector.TableKey, row []byte) (links []Link, present []string, err error) {
	if len(t.rels) == 0 {
		return nil, nil, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(row, &top); err != nil {
		return nil, nil, fmt.Errorf("reading relationship columns: %w", err)
	}
	for _, r := range t.rels {
		raw, ok := top[r.Column]
		if !ok {
			continue
		}
		present = append(present, r.Column)
		to := r.TargetOf(key.Database)
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, nil, fmt.Errorf("reading relationship column %s: %w", r.Column, err)
		}
		if list, isList := v.([]any); isList {
			for i, e := range list {
				if id := linkID(e); id != "" {
					links = append(links, Link{Column: r.Column, Ord: i, To: to, ID: id})
				}
			}
			continue
		}
		if id := linkID(v); id != "" {
			links = append(links, Link{Column: r.Column, Ord: -1, To: to, ID: id})
		}
	}
	return links, present, nil
}

// linkID is the id an element of a relationship column names: the string itself, or the
// "$id" of an object; "" for anything else (null, a number).
func linkID(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if id, ok := x["$id"].(string); ok {
			return id
		}
	}
	return ""
}

// LinksFingerprint identifies the table's relationships as Links reads them: when it changes,
// the links of the rows already recorded are read again. "" when the table declares none.
func (t *Table) LinksFingerprint() string {
	if len(t.rels) == 0 {
		return ""
	}
	spec := make([]string, len(t.rels))
	for i, r := range t.rels {
		spec[i] = r.Column + "->" + r.Target.String()
	}
	sort.Strings(spec)
	return hashSpec(struct {
		V    int
		Rels []string
	}{1, spec})
}
