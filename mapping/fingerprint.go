package mapping

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
)

// The fingerprints hash a normalized JSON description of each projection. Bump the version
// when the meaning of a projection changes without its spec changing, so every row is
// re-projected once.
const (
	meiliSpecVersion = 1
	pgSpecVersion    = 1
)

func hashSpec(spec any) string {
	b, err := json.Marshal(spec) // struct fields in order, map keys sorted: deterministic
	if err != nil {
		panic("mapping: fingerprint spec does not marshal: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// rels is the relationship spec (Mapping.relSpec): a path such as author.name reads through it.
func (t *Table) meiliFingerprint(rels []string) string {
	mp := t.Meili
	spec := struct {
		V           int
		Index       string
		PrimaryKey  string
		Shared      bool
		Fields      [][2]string // output name, source path; nil = default selection
		Exclude     []string
		Settings    IndexSettings
		Where       string
		Permissions string
		Rels        []string `json:",omitempty"` // omitted when none: earlier fingerprints stay
	}{V: meiliSpecVersion, Index: mp.Index, PrimaryKey: mp.PrimaryKey, Shared: mp.SharedIndex,
		Settings: mp.Settings, Where: t.where.String(), Permissions: t.perm, Rels: rels}
	if mp.fields != nil {
		spec.Fields = make([][2]string, len(mp.fields))
		for i, f := range mp.fields {
			spec.Fields[i] = [2]string{f.name, f.path.raw}
		}
	}
	spec.Exclude = append([]string(nil), mp.Exclude...)
	sort.Strings(spec.Exclude)
	return hashSpec(spec)
}

func (t *Table) pgFingerprint(rels []string) string {
	pp := t.PG
	spec := struct {
		V           int
		Schema      string
		Table       string
		Columns     [][3]string // name, type, source
		Delete      DeleteMode
		Indexes     []Index
		Where       string
		Permissions string
		Rels        []string `json:",omitempty"`
	}{V: pgSpecVersion, Schema: pp.Schema, Table: pp.Table, Delete: pp.Delete, Indexes: pp.Indexes,
		Where: t.where.String(), Permissions: t.perm, Rels: rels}
	for _, c := range pp.Columns {
		spec.Columns = append(spec.Columns, [3]string{c.Name, c.Type, c.From})
	}
	return hashSpec(spec)
}
