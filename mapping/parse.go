package mapping

import (
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/yamlnode"
)

// errAt records a problem at n without repeating the value (the problem text names it).
func errAt(d *yamlnode.Node, n *yaml.Node, path, problem, fix string) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.Errs = append(d.Errs, connector.ConfigError{File: d.File, Line: line, Path: path, Problem: problem, Fix: fix})
}

// LoadFile reads a separate mapping file (`mapping_file:`), whose top level is
// `tables: [...]`, expanding ${VAR} and ${VAR:-default} with lookup. The error, if any, is
// connector.ConfigErrors listing every problem; the tables that parsed cleanly are returned
// either way. Cross-table checks happen in New.
func LoadFile(path string, lookup yamlnode.LookupEnv) ([]*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, connector.ConfigErrors{{File: path, Problem: fmt.Sprintf("cannot read mapping file: %v", err),
			Fix: "check mapping_file in the config"}}
	}
	return parseFile(path, b, lookup)
}

func parseFile(file string, b []byte, lookup yamlnode.LookupEnv) ([]*Table, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, connector.ConfigErrors{yamlnode.YAMLSyntaxError(file, b, err)}
	}
	if len(root.Content) == 0 {
		return nil, connector.ConfigErrors{{File: file, Problem: "the mapping file is empty",
			Fix: "start it with `tables:` and list the tables to sync"}}
	}
	d := yamlnode.NewNode(file, &root, lookup)
	doc := root.Content[0]
	var tables []*Table
	found := false
	for _, f := range d.Fields(doc, "", "tables") {
		found = true
		tables = ParseTables(d, f.Value, f.Path)
	}
	if !found && doc.Kind == yaml.MappingNode && len(d.Errs) == 0 {
		errAt(d, doc, "", "no `tables:` key", "list the tables to sync under `tables:`")
	}
	return tables, d.Errs.Err()
}

// ParseTables decodes the `tables:` sequence node n found at YAML path path. Every problem is
// recorded in d.Errs; only entries without problems are returned.
func ParseTables(d *yamlnode.Node, n *yaml.Node, path string) []*Table {
	if yamlnode.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		errAt(d, n, path, "must be a list of tables",
			"write each table as a list item starting with `- database: <id>`")
		return nil
	}
	var out []*Table
	for i, c := range n.Content {
		before := len(d.Errs)
		t := parseTable(d, c, fmt.Sprintf("%s[%d]", path, i))
		if t != nil && len(d.Errs) == before {
			out = append(out, t)
		}
	}
	return out
}

var tableKeys = []string{"database", "table", "where", "permissions", "relationships", "meilisearch", "postgres"}

func parseTable(d *yamlnode.Node, n *yaml.Node, p string) *Table {
	if n.Kind != yaml.MappingNode {
		errAt(d, n, p, "a table entry must be a mapping",
			"write `- database: main` and `table: posts` on the following line")
		return nil
	}
	t := &Table{File: d.File, Line: n.Line, Path: p}
	var meiliF, pgF, permF *yamlnode.Field
	var haveDB, haveTable bool
	for _, f := range d.Fields(n, p, tableKeys...) {
		switch f.Key {
		case "database":
			haveDB = true
			t.Database = d.String(f.Value, f.Path)
			if t.Database != "*" && !connector.ValidID(t.Database) {
				errAt(d, f.Value, f.Path, fmt.Sprintf("%q is not an Appwrite database id", d.Shown(f.Value)),
					`write the database id (letters, digits, ".", "-", "_"), or "*" for every database`)
			}
		case "table":
			haveTable = true
			t.Table = d.String(f.Value, f.Path)
			if !connector.ValidID(t.Table) {
				fix := `write the table id (letters, digits, ".", "-", "_"; the legacy collection id)`
				if t.Table == "*" {
					fix = `"*" is only allowed for database; list each table`
				}
				errAt(d, f.Value, f.Path, fmt.Sprintf("%q is not an Appwrite table id", d.Shown(f.Value)), fix)
			}
		case "where":
			t.where = parseWhere(d, f.Value, f.Path)
		case "relationships":
			t.rels = parseRelationships(d, f.Value, f.Path)
		case "permissions":
			permF = &f
		case "meilisearch":
			meiliF = &f
		case "postgres":
			pgF = &f
		}
	}
	if !haveDB {
		errAt(d, n, yamlnode.JoinPath(p, "database"), "missing database",
			`add database: <Appwrite database id> (or "*" for every database)`)
	}
	if !haveTable {
		errAt(d, n, yamlnode.JoinPath(p, "table"), "missing table", "add table: <Appwrite table id>")
	}
	if permF != nil {
		t.perm = parsePermissions(d, permF.Value, permF.Path)
	}
	if meiliF != nil {
		t.Meili = parseMeili(d, t, meiliF)
	}
	if pgF != nil {
		t.PG = parsePG(d, t, pgF)
	}
	return t
}

// parsePermissions decodes `permissions: {field: read_roles}`.
func parsePermissions(d *yamlnode.Node, n *yaml.Node, p string) string {
	var field string
	found := false
	for _, f := range d.Fields(n, p, "field") {
		found = true
		field = d.String(f.Value, f.Path)
		if field == "" || field[0] == '$' {
			errAt(d, f.Value, f.Path, fmt.Sprintf("invalid field name %q", field),
				"name the field that receives the read roles, e.g. read_roles")
			return ""
		}
	}
	if !found && n.Kind == yaml.MappingNode {
		errAt(d, n, yamlnode.JoinPath(p, "field"), "missing field",
			"add field: read_roles (the name of the field/column that receives the read roles)")
	}
	return field
}
