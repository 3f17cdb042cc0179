package mapping

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Plan renders what the mapping will do, for `appwrite-sync validate`: per table the
// predicate, the Meilisearch index with its primary key, fields and settings, the warehouse
// DDL, and each projection's fingerprint.
func (m *Mapping) Plan() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d table(s) mapped; warehouse schema %q\n", len(m.Tables), m.Schema)
	if g := m.planRelationships(); g != "" {
		b.WriteString("\n" + g)
	}
	for _, t := range m.Tables {
		fmt.Fprintf(&b, "\n%s  (%s, %s)\n", t.Key(), t.at(), t.Path)
		if len(t.where) > 0 {
			fmt.Fprintf(&b, "  where: %s\n", t.where)
		}
		if t.Meili == nil && t.PG == nil {
			b.WriteString("  no sink: recorded in the ledger (and backfilled) for joins only\n")
		}
		for _, r := range t.rels {
			fmt.Fprintf(&b, "  relationship: %s\n", r)
		}
		if t.perm != "" {
			fmt.Fprintf(&b, "  permissions: read roles of $permissions -> %s\n", t.perm)
		}
		if mp := t.Meili; mp != nil {
			fmt.Fprintf(&b, "  meilisearch  (fingerprint %s)\n", mp.Fingerprint)
			shared := ""
			if mp.SharedIndex {
				shared = `, shared: primary key encodes "database/table/$id", "$table" = "database/table"`
			}
			fmt.Fprintf(&b, "    index:         %s (primary key %q = encoded $id%s)\n", mp.Index, mp.PrimaryKey, shared)
			if mp.fields == nil {
				line := "every non-$ column"
				if len(mp.Exclude) > 0 {
					line += " except " + strings.Join(mp.Exclude, ", ")
				}
				fmt.Fprintf(&b, "    fields:        %s\n", line)
			} else {
				names := make([]string, len(mp.fields))
				for i, f := range mp.fields {
					names[i] = f.name
					if f.name != f.path.raw {
						names[i] += " <- " + f.path.raw
					}
				}
				fmt.Fprintf(&b, "    fields:        %s\n", strings.Join(names, ", "))
			}
			s := mp.Settings
			planList(&b, "searchable", s.Searchable)
			planList(&b, "filterable", s.Filterable)
			planList(&b, "sortable", s.Sortable)
			planList(&b, "displayed", s.Displayed)
			planList(&b, "ranking_rules", s.RankingRules)
			planList(&b, "stop_words", s.StopWords)
			if s.Synonyms != nil {
				words := slices.Sorted(maps.Keys(s.Synonyms))
				for i, w := range words {
					words[i] = w + " = " + strings.Join(s.Synonyms[w], " | ")
				}
				planList(&b, "synonyms", words)
			}
		}
		if pp := t.PG; pp != nil {
			fmt.Fprintf(&b, "  postgres  (fingerprint %s)\n", pp.Fingerprint)
			fmt.Fprintf(&b, "    table:         %s (delete: %s)\n", pp.QualifiedTable(), pp.Delete)
			for _, c := range pp.Columns {
				if c.From != c.Name && !c.perm {
					fmt.Fprintf(&b, "    column:        %s %s <- %s\n", c.Name, c.Type, c.From)
				}
			}
			for _, stmt := range pp.DDL() {
				b.WriteString("    " + strings.ReplaceAll(stmt, "\n", "\n    ") + ";\n")
			}
			if h := pp.History; h != nil {
				fmt.Fprintf(&b, "    history:       %s, view %s (%s)\n", pp.QualifiedHistoryTable(), pp.HistoryView(), h.describe())
				for _, stmt := range pp.HistoryDDL()[1:] { // the schema is created above
					b.WriteString("    " + strings.ReplaceAll(stmt, "\n", "\n    ") + ";\n")
				}
			}
		}
	}
	return b.String()
}

func planList(b *strings.Builder, name string, list []string) {
	if list == nil {
		return
	}
	v := strings.Join(list, ", ")
	if len(list) == 0 {
		v = "(empty)"
	}
	fmt.Fprintf(b, "    %-14s %s\n", name+":", v)
}
