package mapping

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/suggest"
	"github.com/appwrite-sync/appwrite-sync/internal/yamlnode"
)

// Names of fields every Meilisearch document carries.
const (
	// FieldID holds the raw Appwrite $id in every document.
	FieldID = "$id"
	// FieldTable holds "database/table" in documents of a shared index.
	FieldTable = "$table"
	// DefaultPrimaryKey is the Meilisearch primary key field when primary_key is not set.
	DefaultPrimaryKey = "id"
)

// MeiliProjection is how a table projects into a Meilisearch index.
type MeiliProjection struct {
	// Index is the index uid (default: the table id).
	Index string
	// PrimaryKey is the document field holding the encoded id (default "id").
	PrimaryKey string
	// SharedIndex lets several tables write one index: the primary key then encodes
	// "database/table/$id" and every document carries FieldTable.
	SharedIndex bool
	// Fields are the output names of the explicitly selected fields plus the permissions
	// field; nil when the selection is the default (every non-$ column minus Exclude).
	Fields []string
	// Exclude lists the top-level columns left out of the default selection.
	Exclude []string
	// Settings are the index settings to apply; a nil list or map means "not set".
	Settings IndexSettings
	// Fingerprint changes whenever anything that shapes the documents or the settings does
	// (including `where` and `permissions`). Set by New.
	Fingerprint string

	fields  []field // nil: default selection
	exclude map[string]bool
	perm    string
}

// IndexSettings are the Meilisearch settings a mapping may set. nil means not set (leave the
// index's value alone); a non-nil empty list means the empty list.
type IndexSettings struct {
	Searchable   []string
	Filterable   []string
	Sortable     []string
	Displayed    []string
	RankingRules []string
	Synonyms     map[string][]string
	StopWords    []string
}

// field is one selected document field: output name and source path.
type field struct {
	name string
	path path
}

var meiliKeys = []string{"index", "primary_key", "fields", "exclude", "searchable", "filterable",
	"sortable", "displayed", "ranking_rules", "synonyms", "stop_words", "shared_index"}

var primaryKeyRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// builtinRankingRules are Meilisearch's built-in ranking rules (attributeRank and wordPosition
// split attribute in newer servers).
var builtinRankingRules = []string{"words", "typo", "proximity", "attribute", "sort", "exactness",
	"attributeRank", "wordPosition"}

const fieldsFix = "write e.g. fields: [title, body, {author_name: author.name}] " +
	"(a rename is a one-key mapping: output name → source path, or {author_name: {from: author.name}})"

func parseMeili(d *yamlnode.Node, t *Table, sec *yamlnode.Field) *MeiliProjection {
	mp := &MeiliProjection{Index: t.Table, PrimaryKey: DefaultPrimaryKey, perm: t.perm}
	t.indexAt = pos{sec.KeyN.Line, sec.Path}
	p := sec.Path
	var fieldsF, excludeF *yamlnode.Field
	settings := map[string]*yamlnode.Field{}
	var fs []yamlnode.Field
	if !yamlnode.IsNull(sec.Value) {
		fs = d.Fields(sec.Value, p, meiliKeys...)
	}
	indexSet := false
	for i := range fs {
		f := &fs[i]
		switch f.Key {
		case "index":
			indexSet = true
			mp.Index = d.String(f.Value, f.Path)
			t.indexAt = pos{f.Value.Line, f.Path}
			if !indexUIDRe.MatchString(mp.Index) {
				errAt(d, f.Value, f.Path, fmt.Sprintf("%q is not a valid index uid", d.Shown(f.Value)),
					"use 1 to 400 letters, digits, - and _")
			}
		case "primary_key":
			mp.PrimaryKey = d.String(f.Value, f.Path)
			if !primaryKeyRe.MatchString(mp.PrimaryKey) {
				errAt(d, f.Value, f.Path, fmt.Sprintf("%q is not a valid primary key field", d.Shown(f.Value)),
					`use letters, digits, - and _ (the raw Appwrite id is always in "$id")`)
			}
		case "shared_index":
			mp.SharedIndex = d.Bool(f.Value, f.Path)
		case "fields":
			fieldsF = f
		case "exclude":
			excludeF = f
		default:
			settings[f.Key] = f
		}
	}
	if !indexSet && t.Table != "" && !indexUIDRe.MatchString(t.Table) {
		errAt(d, sec.KeyN, p, fmt.Sprintf("the index uid defaults to the table id %q, which is not a valid index uid", t.Table),
			"set meilisearch.index to 1 to 400 letters, digits, - and _")
	}

	// Reserved output names: always written by MeiliDocument.
	reserved := map[string]string{FieldID: "the raw Appwrite id is always written to \"$id\""}
	reserved[mp.PrimaryKey] = "it is the primary key field, which holds the encoded id"
	if mp.SharedIndex {
		reserved[FieldTable] = `shared indexes write "database/table" to "$table"`
	}
	if t.perm != "" {
		if why, clash := reserved[t.perm]; clash {
			errAt(d, sec.KeyN, p, fmt.Sprintf("permissions field %q clashes with a document field: %s", t.perm, why),
				"choose another permissions.field")
		}
	}

	if fieldsF != nil {
		mp.fields = parseFields(d, fieldsF.Value, fieldsF.Path, reserved, t.perm)
		mp.Fields = make([]string, 0, len(mp.fields)+1)
		for _, f := range mp.fields {
			mp.Fields = append(mp.Fields, f.name)
		}
		if t.perm != "" {
			mp.Fields = append(mp.Fields, t.perm)
		}
	}
	if excludeF != nil {
		if fieldsF != nil {
			errAt(d, excludeF.KeyN, excludeF.Path, "exclude only applies to the default field selection",
				"remove exclude and leave the excluded columns out of fields")
		} else {
			mp.Exclude = d.StringList(excludeF.Value, excludeF.Path)
			mp.exclude = make(map[string]bool, len(mp.Exclude))
			for _, x := range mp.Exclude {
				mp.exclude[x] = true
			}
		}
	}

	known := attrSet{fields: slices.Clone(mp.Fields), explicit: fieldsF != nil, exclude: mp.exclude}
	known.fields = append(known.fields, FieldID, mp.PrimaryKey)
	if mp.SharedIndex {
		known.fields = append(known.fields, FieldTable)
	}
	if t.perm != "" && !known.explicit {
		known.fields = append(known.fields, t.perm)
	}
	s := &mp.Settings
	for _, name := range []string{"searchable", "filterable", "sortable", "displayed"} {
		f := settings[name]
		if f == nil {
			continue
		}
		list := d.StringList(f.Value, f.Path)
		if list == nil {
			list = []string{}
		}
		seen := map[string]bool{}
		for i, a := range list {
			ap := fmt.Sprintf("%s[%d]", f.Path, i)
			if seen[a] {
				errAt(d, elem(f.Value, i), ap, fmt.Sprintf("%q is listed twice", a), "list each attribute once")
			}
			seen[a] = true
			known.check(d, elem(f.Value, i), ap, a)
		}
		switch name {
		case "searchable":
			s.Searchable = list
		case "filterable":
			s.Filterable = list
		case "sortable":
			s.Sortable = list
		case "displayed":
			s.Displayed = list
		}
	}
	if f := settings["ranking_rules"]; f != nil {
		s.RankingRules = d.StringList(f.Value, f.Path)
		if s.RankingRules == nil {
			s.RankingRules = []string{}
		}
		for i, r := range s.RankingRules {
			rp := fmt.Sprintf("%s[%d]", f.Path, i)
			if slices.Contains(builtinRankingRules, r) {
				continue
			}
			if attr, dir, ok := strings.Cut(r, ":"); ok && (dir == "asc" || dir == "desc") && attr != "" {
				known.check(d, elem(f.Value, i), rp, attr)
				continue
			}
			fix := "use one of " + strings.Join(builtinRankingRules, ", ") + ", or attribute:asc / attribute:desc"
			if sg := suggest.Closest(r, builtinRankingRules); sg != "" {
				fix = fmt.Sprintf("did you mean %q? (%s)", sg, fix)
			}
			errAt(d, elem(f.Value, i), rp, fmt.Sprintf("unknown ranking rule %q", r), fix)
		}
	}
	if f := settings["stop_words"]; f != nil {
		s.StopWords = d.StringList(f.Value, f.Path)
		if s.StopWords == nil {
			s.StopWords = []string{}
		}
	}
	if f := settings["synonyms"]; f != nil {
		s.Synonyms = map[string][]string{}
		for _, w := range d.Fields(f.Value, f.Path) {
			list := d.StringList(w.Value, w.Path)
			if len(list) == 0 {
				errAt(d, w.Value, w.Path, "no synonyms listed", "write e.g. phone: [mobile, cellphone]")
			}
			s.Synonyms[w.Key] = list
		}
	}

	// Automatic filterable attributes: the permissions field (to filter by role) and, in a
	// shared index, "$table" (to tell the tables apart and delete one table's documents).
	for _, a := range []string{t.perm, tableIfShared(mp.SharedIndex)} {
		if a != "" && !slices.Contains(s.Filterable, a) {
			s.Filterable = append(s.Filterable, a)
		}
	}
	return mp
}

func tableIfShared(shared bool) string {
	if shared {
		return FieldTable
	}
	return ""
}

// elem returns the i-th element node of a list (or the node itself for a scalar).
func elem(n *yaml.Node, i int) *yaml.Node {
	if n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}

// attrSet checks that settings name attributes the documents have.
type attrSet struct {
	fields   []string
	explicit bool
	exclude  map[string]bool
}

func (a attrSet) check(d *yamlnode.Node, n *yaml.Node, p, name string) {
	if strings.Contains(name, "*") {
		return // a pattern; Meilisearch resolves it
	}
	for _, f := range a.fields {
		if name == f || strings.HasPrefix(name, f+".") {
			return
		}
	}
	top, _, _ := strings.Cut(name, ".")
	if !a.explicit {
		switch {
		case strings.HasPrefix(name, "$"):
			errAt(d, n, p, fmt.Sprintf("%q is not in the documents: the default field selection leaves out $ attributes", name),
				fmt.Sprintf("list the fields explicitly, including %q", name))
		case a.exclude[name] || a.exclude[top]:
			errAt(d, n, p, fmt.Sprintf("%q is excluded from the documents", name),
				"remove it from exclude, or from this setting")
		}
		return // any other column may exist: the default selection takes every non-$ column
	}
	fix := "add it to fields, or remove it from this setting"
	if s := suggest.Closest(name, a.fields); s != "" {
		fix = fmt.Sprintf("did you mean %q? (%s)", s, fix)
	}
	errAt(d, n, p, fmt.Sprintf("%q is not a field of the documents", name), fix)
}

// parseFields decodes the explicit field list: "name" (a column or dotted path, written under
// the same name) or a one-key rename {out: path} / {out: {from: path}}.
func parseFields(d *yamlnode.Node, n *yaml.Node, p string, reserved map[string]string, perm string) []field {
	if yamlnode.IsNull(n) {
		return []field{}
	}
	if n.Kind != yaml.SequenceNode {
		errAt(d, n, p, "must be a list", fieldsFix)
		return []field{}
	}
	out := make([]field, 0, len(n.Content))
	seen := map[string]string{}
	for i, c := range n.Content {
		ep := fmt.Sprintf("%s[%d]", p, i)
		var name, src string
		var srcN *yaml.Node
		switch {
		case c.Kind == yaml.ScalarNode && !yamlnode.IsNull(c):
			name, src, srcN = c.Value, c.Value, c
		case c.Kind == yaml.MappingNode && len(c.Content) == 2:
			name = c.Content[0].Value
			ep = yamlnode.JoinPath(ep, name)
			v := c.Content[1]
			switch {
			case v.Kind == yaml.ScalarNode && !yamlnode.IsNull(v):
				src, srcN = v.Value, v
			case v.Kind == yaml.MappingNode:
				for _, f := range d.Fields(v, ep, "from") {
					src, srcN = d.String(f.Value, f.Path), f.Value
				}
				if srcN == nil {
					errAt(d, v, yamlnode.JoinPath(ep, "from"), "missing from", "write {"+name+": {from: source.path}}")
					continue
				}
			default:
				errAt(d, v, ep, "a rename needs a source path", fieldsFix)
				continue
			}
		default:
			errAt(d, c, ep, "not a field", fieldsFix)
			continue
		}
		if name == "" {
			errAt(d, c, ep, "empty field name", fieldsFix)
			continue
		}
		pa, err := compilePath(src)
		if err != nil {
			errAt(d, srcN, ep, fmt.Sprintf("invalid source path %q: %v", src, err), "write a dotted path such as author.name")
			continue
		}
		if why, clash := reserved[name]; clash {
			errAt(d, c, ep, fmt.Sprintf("field %q is reserved: %s", name, why), "remove it, or rename it: {my_"+strings.TrimPrefix(name, "$")+": "+src+"}")
			continue
		}
		if name == perm {
			errAt(d, c, ep, fmt.Sprintf("field %q is the permissions field", name), "rename the field, or choose another permissions.field")
			continue
		}
		if prev, dup := seen[name]; dup {
			errAt(d, c, ep, fmt.Sprintf("field %q is already selected at %s", name, prev), "select each output name once")
			continue
		}
		seen[name] = ep
		out = append(out, field{name: name, path: pa})
	}
	return out
}

// MeiliID returns the primary-key value of a row of this table in its index: encodeID($id),
// or encodeID("database/table/$id") in a shared index. Use it for deletes.
func (t *Table) MeiliID(key connector.TableKey, rowID string, encodeID func(string) string) string {
	if t.Meili != nil && t.Meili.SharedIndex {
		return encodeID(key.Database + "/" + key.Table + "/" + rowID)
	}
	return encodeID(rowID)
}

// MeiliDocument projects a row into its Meilisearch document: the primary key field =
// encodeID of the id (see MeiliID), "$id" = the raw Appwrite id, "$table" = "database/table"
// in a shared index, the selected fields (a missing path gives null), and the permissions
// field when configured. key is the row's actual table (it matters for database "*" entries).
// encodeID turns an id into a valid Meilisearch document id; the Meilisearch sink supplies it.
func (t *Table) MeiliDocument(r Row, key connector.TableKey, encodeID func(string) string) (map[string]any, error) {
	mp := t.Meili
	if mp == nil {
		return nil, fmt.Errorf("table %s is not mapped to meilisearch", t.Key())
	}
	id := r.ID()
	if id == "" {
		return nil, connector.Permanent(`row has no "$id" string`, nil)
	}
	var doc map[string]any
	if mp.fields != nil {
		doc = make(map[string]any, len(mp.fields)+4)
		for i := range mp.fields {
			f := &mp.fields[i]
			v, _ := f.path.get(r)
			doc[f.name] = v
		}
	} else {
		doc = make(map[string]any, len(r)+4)
		for k, v := range r {
			if k == "" || k[0] == '$' || mp.exclude[k] || k == mp.PrimaryKey || k == mp.perm {
				continue
			}
			doc[k] = v
		}
	}
	doc[mp.PrimaryKey] = t.MeiliID(key, id, encodeID)
	doc[FieldID] = id
	if mp.SharedIndex {
		doc[FieldTable] = key.String()
	}
	if mp.perm != "" {
		doc[mp.perm] = readRoles(r["$permissions"])
	}
	return doc, nil
}

// readRoles returns the roles of the `read("…")` entries of $permissions, in order, without
// duplicates; an empty (non-nil) list when there are none. Only read grants visibility:
// Appwrite's write/update/delete permissions do not.
func readRoles(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok || len(s) < len(`read("")`) || !strings.HasPrefix(s, `read("`) || !strings.HasSuffix(s, `")`) {
			continue
		}
		role := s[len(`read("`) : len(s)-len(`")`)]
		if role == "" || strings.IndexByte(role, 0) >= 0 || slices.Contains(out, role) {
			continue // not a role Appwrite can hold
		}
		out = append(out, role)
	}
	return out
}
