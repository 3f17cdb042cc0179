package mapping

import (
	"fmt"
	"reflect"
	"regexp"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// DefaultSchema is the warehouse schema used when warehouse.schema is empty.
const DefaultSchema = "appwrite"

// Mapping is the validated set of mapped tables. It is immutable after New and safe for
// concurrent use.
type Mapping struct {
	Tables []*Table
	// Schema is the warehouse schema every Postgres projection lives in.
	Schema string

	exact map[connector.TableKey]*Table
	wild  map[string]*Table // database "*" entries, by table id
}

// Table is one entry of `tables:`: how one Appwrite table (or, with database "*", the table of
// that id in every database) projects into the sinks.
type Table struct {
	// Database is the Appwrite database id, or "*" for every database.
	Database string
	// Table is the Appwrite table id (== legacy collection id).
	Table string
	// File, Line and Path say where the entry was declared, for messages.
	File string
	Line int
	Path string
	// Meili is the Meilisearch projection; nil when the table is not indexed.
	Meili *MeiliProjection
	// PG is the warehouse projection; nil when the table is not warehoused.
	PG *PGProjection

	where where
	rels  []Relationship // relationships:, in declared order
	perm  string         // permissions output field / column; "" when off
	// pgKeys are the top-level keys DecodeRowForPostgres decodes (set by New; nil: all);
	// meiliKeys those DecodeRowForMeili decodes.
	pgKeys, meiliKeys map[string]bool

	indexAt   pos // meilisearch.index (or the meilisearch section when defaulted)
	pgTableAt pos // postgres.table (or the postgres section when defaulted)
}

// pos is a place in a file, for errors found across tables.
type pos struct {
	line int
	path string
}

// Key returns the table's key (Database may be "*").
func (t *Table) Key() connector.TableKey {
	return connector.TableKey{Database: t.Database, Table: t.Table}
}

// at returns "file:line" of the entry.
func (t *Table) at() string { return fmt.Sprintf("%s:%d", t.File, t.Line) }

// PermissionsField returns the name of the field (Meilisearch) and column (Postgres) that
// holds the row's read roles, or "" when `permissions` is not configured.
func (t *Table) PermissionsField() string { return t.perm }

var (
	identRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	indexUIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,400}$`)
)

// New validates the tables together (duplicate entries, indexes shared without shared_index,
// two tables writing one warehouse table, clashing Postgres index names), places every
// Postgres projection in schema ("" means DefaultSchema), computes the fingerprints and builds
// the Mapping. New takes ownership of tables. Every problem is reported, as
// connector.ConfigErrors.
func New(tables []*Table, schema string) (*Mapping, error) {
	var errs connector.ConfigErrors
	if schema == "" {
		schema = DefaultSchema
	}
	if !identRe.MatchString(schema) {
		errs = append(errs, connector.ConfigError{Path: "warehouse.schema", Value: schema,
			Problem: "not a valid Postgres schema name" + tooLong(schema),
			Fix:     "use letters, digits and _ (not starting with a digit), at most 63 characters"})
	}
	m := &Mapping{Tables: tables, Schema: schema,
		exact: map[connector.TableKey]*Table{}, wild: map[string]*Table{}}

	var indexOrder []string
	byIndex := map[string][]*Table{}
	pgTargets := map[string]*Table{}
	relNames := map[string]string{} // relation name in the schema → what declared it
	for _, t := range tables {
		k := t.Key()
		prev := m.exact[k]
		if t.Database == "*" {
			prev = m.wild[t.Table]
		}
		if prev != nil {
			errs = append(errs, connector.ConfigError{File: t.File, Line: t.Line, Path: t.Path,
				Problem: fmt.Sprintf("table %s is mapped twice (first at %s)", k, prev.at()),
				Fix:     "merge the two entries into one"})
			continue
		}
		if t.Database == "*" {
			m.wild[t.Table] = t
		} else {
			m.exact[k] = t
		}
		if t.Meili != nil {
			if _, ok := byIndex[t.Meili.Index]; !ok {
				indexOrder = append(indexOrder, t.Meili.Index)
			}
			byIndex[t.Meili.Index] = append(byIndex[t.Meili.Index], t)
		}
		if t.PG != nil {
			t.PG.Schema = schema
			if prev := pgTargets[t.PG.Table]; prev != nil {
				errs = append(errs, connector.ConfigError{File: t.File, Line: t.pgTableAt.line, Path: t.pgTableAt.path,
					Problem: fmt.Sprintf("warehouse table %s is also written by %s (%s)", t.PG.QualifiedTable(), prev.Key(), prev.at()),
					Fix:     "give each Appwrite table its own postgres.table"})
				continue
			}
			pgTargets[t.PG.Table] = t
			errs = append(errs, t.claimRelations(relNames)...)
		}
	}

	for _, uid := range indexOrder {
		ts := byIndex[uid]
		if len(ts) < 2 {
			continue
		}
		first := ts[0]
		for i, t := range ts {
			other := ts[(i+1)%len(ts)]
			if !t.Meili.SharedIndex {
				errs = append(errs, connector.ConfigError{File: t.File, Line: t.indexAt.line, Path: t.indexAt.path,
					Problem: fmt.Sprintf("index %q is also used by %s (%s)", uid, other.Key(), other.at()),
					Fix:     "set shared_index: true on every table that shares the index, or give each table its own index"})
				continue
			}
			if i == 0 {
				continue
			}
			if t.Meili.PrimaryKey != first.Meili.PrimaryKey {
				errs = append(errs, connector.ConfigError{File: t.File, Line: t.indexAt.line, Path: t.indexAt.path,
					Problem: fmt.Sprintf("shared index %q: primary_key %q differs from %q declared by %s (%s)",
						uid, t.Meili.PrimaryKey, first.Meili.PrimaryKey, first.Key(), first.at()),
					Fix: "use the same primary_key on every table that shares the index"})
			}
			if !reflect.DeepEqual(t.Meili.Settings, first.Meili.Settings) {
				errs = append(errs, connector.ConfigError{File: t.File, Line: t.indexAt.line, Path: t.indexAt.path,
					Problem: fmt.Sprintf("shared index %q: settings differ from those declared by %s (%s)", uid, first.Key(), first.at()),
					Fix:     "an index has one set of settings: declare identical searchable, filterable, sortable, displayed, ranking_rules, synonyms and stop_words on every table that shares it"})
			}
		}
	}
	errs = append(errs, m.checkRelationships()...)
	if len(errs) > 0 {
		return nil, errs.Err()
	}
	for _, t := range tables {
		rels := m.relSpec(t)
		if t.Meili != nil {
			t.Meili.Fingerprint = t.meiliFingerprint(rels)
			t.meiliKeys = t.meilisearchKeys()
		}
		if t.PG != nil {
			t.PG.Fingerprint = t.pgFingerprint(rels)
			t.pgKeys = t.postgresKeys()
		}
	}
	return m, nil
}

// postgresKeys are the top-level row keys the warehouse projection reads: the first segment
// of every column and filter path and each dotted key it may also match ("a.b" of "a.b.c"),
// $createdAt, and $permissions when a column holds the read roles.
func (t *Table) postgresKeys() map[string]bool {
	keys := map[string]bool{"$createdAt": true}
	for i := range t.PG.Columns {
		if c := &t.PG.Columns[i]; c.perm {
			keys["$permissions"] = true
		} else {
			c.path.addKeys(keys)
		}
	}
	for i := range t.where {
		t.where[i].path.addKeys(keys)
	}
	return keys
}

// meilisearchKeys are the top-level row keys the Meilisearch projection reads when it names
// its fields: $id, the keys of every field and filter path (as postgresKeys), and
// $permissions when a field holds the read roles. nil (every key) for the default selection,
// which takes every column.
func (t *Table) meilisearchKeys() map[string]bool {
	mp := t.Meili
	if mp.fields == nil {
		return nil
	}
	keys := map[string]bool{"$id": true}
	for i := range mp.fields {
		mp.fields[i].path.addKeys(keys)
	}
	if mp.perm != "" {
		keys["$permissions"] = true
	}
	for i := range t.where {
		t.where[i].path.addKeys(keys)
	}
	return keys
}

// addKeys adds the top-level row keys p may read: its first segment and each dotted key it
// may also match ("a.b" of "a.b.c").
func (p *path) addKeys(keys map[string]bool) {
	if len(p.segs) == 0 {
		return
	}
	keys[p.segs[0]] = true
	for _, k := range p.joined[0] {
		keys[k] = true
	}
}

// Lookup returns the table mapped for key: an entry for exactly that database first, then a
// database "*" entry; nil when the table is not mapped.
func (m *Mapping) Lookup(key connector.TableKey) *Table {
	if m.exact == nil { // a Mapping built by hand, not by New
		var wild *Table
		for _, t := range m.Tables {
			if t.Table != key.Table {
				continue
			}
			if t.Database == key.Database {
				return t
			}
			if t.Database == "*" && wild == nil {
				wild = t
			}
		}
		return wild
	}
	if t := m.exact[key]; t != nil {
		return t
	}
	return m.wild[key.Table]
}
