// Package yamlnode decodes a go.yaml.in/yaml/v3 node tree strictly for the configuration and
// the mapping: ${VAR} expansion per scalar (so line numbers stay true), redaction of values
// from the environment in messages, unknown keys with a did-you-mean, and every problem
// collected as a connector.ConfigError with file, line, YAML path and fix.
package yamlnode

import (
	"fmt"
	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/suggest"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// LookupEnv finds an environment variable; os.LookupEnv in production, a map in tests.
type LookupEnv func(name string) (string, bool)

// ExpandEnv expands ${VAR} and ${VAR:-default} in s. "$${" is a literal "${". It returns the
// names of variables that are unset and have no default.
func ExpandEnv(s string, lookup LookupEnv) (out string, missing []string, changed bool) {
	if !strings.Contains(s, "${") {
		return s, nil, false
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			changed = true
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			b.WriteString(s[i:])
			break
		}
		expr := s[i+2 : i+end]
		i += end + 1
		changed = true
		name, def, hasDef := strings.Cut(expr, ":-")
		if v, ok := lookup(name); ok && (v != "" || !hasDef) {
			b.WriteString(v)
		} else if hasDef {
			b.WriteString(def)
		} else {
			missing = append(missing, name)
		}
	}
	return b.String(), missing, changed
}

// Node decodes a yaml.Node tree strictly, collecting every problem as a connector.ConfigError with file,
// line and YAML path. Values that came from environment variables are redacted in messages,
// because they are where secrets live.
type Node struct {
	File    string
	Errs    connector.ConfigErrors
	fromEnv map[*yaml.Node]bool
	redact  map[*yaml.Node]func(string) string
	// unset holds the paths whose value names an unset variable: that error already says
	// what to do, so a second one at the same path ("is required", "empty") is dropped.
	unset map[string]bool
}

// NewNode prepares a decoder for file and expands environment variables in every scalar of
// root (in place), recording unset variables as errors.
func NewNode(file string, root *yaml.Node, lookup LookupEnv) *Node {
	d := &Node{File: file, fromEnv: map[*yaml.Node]bool{}, redact: map[*yaml.Node]func(string) string{}, unset: map[string]bool{}}
	d.expand(root, "", lookup)
	return d
}

func (d *Node) expand(n *yaml.Node, path string, lookup LookupEnv) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			d.expand(c, path, lookup)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.expand(n.Content[i+1], JoinPath(path, n.Content[i].Value), lookup)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.expand(c, fmt.Sprintf("%s[%d]", path, i), lookup)
		}
	case yaml.ScalarNode:
		out, missing, changed := ExpandEnv(n.Value, lookup)
		for _, m := range missing {
			d.unset[path] = true
			d.Errs = append(d.Errs, connector.ConfigError{File: d.File, Line: n.Line, Path: path,
				Problem: fmt.Sprintf("environment variable %s is not set", m),
				Fix: fmt.Sprintf("export %s=... in the environment that runs appwrite-sync (`make run` and `make validate` set development defaults), or write a default in %s: ${%s:-value}",
					m, d.File, m)})
		}
		if changed {
			d.fromEnv[n] = true
			n.Value = out
			if n.Style == 0 {
				n.Tag = "" // re-resolve: "${PORT}" may expand to an int
			}
		}
	}
}

// JoinPath appends a key to a YAML path.
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Shown returns the value of n as it may appear in a message (redacted when it came from the
// environment).
func (d *Node) Shown(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	if d.fromEnv[n] {
		if n.Value == "" {
			return "" // nothing to hide, and "(got <redacted>)" would suggest there was a value
		}
		return "<from environment, redacted>"
	}
	v := n.Value
	if r := d.redact[n]; r != nil && n.Kind == yaml.ScalarNode {
		v = r(v)
	}
	if n.Kind == yaml.MappingNode {
		v = "<mapping>"
	} else if n.Kind == yaml.SequenceNode {
		v = "<list>"
	}
	if len(v) > 80 {
		v = v[:77] + "..."
	}
	return v
}

// Redact makes messages show the value of n through redact (a connection string without its
// password, say) when it is written in the file; a value from the environment is never shown.
func (d *Node) Redact(n *yaml.Node, redact func(string) string) {
	if n != nil {
		d.redact[n] = redact
	}
}

// Errorf records a problem at n, unless path already has an unset variable reported.
func (d *Node) Errorf(n *yaml.Node, path, fix, format string, args ...any) {
	if d.unset[path] {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	d.Errs = append(d.Errs, connector.ConfigError{File: d.File, Line: line, Path: path,
		Value: d.Shown(n), Problem: fmt.Sprintf(format, args...), Fix: fix})
}

// Field is one key of a mapping node, in file order.
type Field struct {
	Key   string
	KeyN  *yaml.Node
	Value *yaml.Node
	Path  string
}

// Fields returns the keys of mapping node n (in order), recording an error for each key not
// in known (with a did-you-mean) and for duplicates. A nil known accepts any key.
func (d *Node) Fields(n *yaml.Node, path string, known ...string) []Field {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, path, "write it as `key: value` lines", "must be a mapping")
		return nil
	}
	seen := map[string]bool{}
	var out []Field
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := JoinPath(path, k.Value)
		if seen[k.Value] {
			d.Errs = append(d.Errs, connector.ConfigError{File: d.File, Line: k.Line, Path: p,
				Problem: "duplicate key", Fix: "keep one of them"})
			continue
		}
		seen[k.Value] = true
		if known != nil && !contains(known, k.Value) {
			fix := "known keys: " + strings.Join(known, ", ")
			if s := suggest.Closest(k.Value, known); s != "" {
				fix = fmt.Sprintf("did you mean %q? (%s)", s, fix)
			}
			d.Errs = append(d.Errs, connector.ConfigError{File: d.File, Line: k.Line, Path: p,
				Problem: fmt.Sprintf("unknown key %q", k.Value), Fix: fix})
			continue
		}
		out = append(out, Field{Key: k.Value, KeyN: k, Value: v, Path: p})
	}
	return out
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// IsNull reports whether n is absent or an explicit null.
func IsNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// String decodes a scalar string.
func (d *Node) String(n *yaml.Node, path string) string {
	if IsNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, path, "write a single value", "must be a string")
		return ""
	}
	return n.Value
}

// Int decodes an integer.
func (d *Node) Int(n *yaml.Node, path string) (int64, bool) {
	if n == nil || n.Kind != yaml.ScalarNode {
		d.Errorf(n, path, "write a whole number, e.g. 1000", "must be an integer")
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, 64)
	if err != nil {
		d.Errorf(n, path, "write a whole number, e.g. 1000", "must be an integer")
		return 0, false
	}
	return v, true
}

// Bool decodes a boolean.
func (d *Node) Bool(n *yaml.Node, path string) bool {
	if n == nil || n.Kind != yaml.ScalarNode {
		d.Errorf(n, path, "write true or false", "must be a boolean")
		return false
	}
	switch strings.ToLower(n.Value) {
	case "true", "yes", "on":
		return true
	case "false", "no", "off":
		return false
	}
	d.Errorf(n, path, "write true or false", "must be a boolean")
	return false
}

// Duration decodes a Go duration ("5m", "250ms").
func (d *Node) Duration(n *yaml.Node, path string) (time.Duration, bool) {
	if n == nil || n.Kind != yaml.ScalarNode {
		d.Errorf(n, path, "write a duration such as 30s, 5m or 24h", "must be a duration")
		return 0, false
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		d.Errorf(n, path, "write a duration such as 30s, 5m or 24h", "must be a non-negative duration")
		return 0, false
	}
	return v, true
}

// StringList decodes a list of strings; a single scalar is accepted as a one-element list.
func (d *Node) StringList(n *yaml.Node, path string) []string {
	if IsNull(n) {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, path, "write a list, e.g. [a, b]", "must be a list of strings")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if c.Kind != yaml.ScalarNode {
			d.Errorf(c, p, "write a plain value", "must be a string")
			continue
		}
		out = append(out, c.Value)
	}
	return out
}
