package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// keyPaths lists the YAML paths of the keys t's tags spell, nested sections included.
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("yaml")
		if key == "" || key == "-" {
			continue
		}
		p := prefix + key
		switch {
		case f.Type.Kind() == reflect.Struct && f.Tag.Get("decode") == "":
			out = append(out, keyPaths(f.Type, p+".")...)
		case f.Type == reflect.TypeFor[TLS]():
			out = append(out, keyPaths(f.Type, p+".")...)
		case f.Type == reflect.TypeFor[[]Webhook]():
			out = append(out, keyPaths(reflect.TypeFor[webhookKeys](), p+"[].")...)
		default:
			out = append(out, p)
		}
	}
	return out
}

// The configuration reference (README.md, or docs/configuration.md where the README links to
// it) has a row for every key the struct tags define, so a key added with its field is
// documented (the rows abbreviate: `a.b` / `c` documents a.c).
func TestREADMEReferenceListsEveryKey(t *testing.T) {
	t.Parallel()
	var ref string
	for _, file := range []string{"../../docs/configuration.md", "../../README.md"} {
		b, err := os.ReadFile(file)
		if i := strings.Index(string(b), "# Configuration reference"); err == nil && i >= 0 {
			ref = string(b)[i:]
			break
		}
	}
	require.NotEmpty(t, ref, "no configuration reference found")
	if end := strings.Index(ref[1:], "\n## Mapping reference"); end >= 0 {
		ref = ref[:end+1]
	}
	var cells []string
	for _, line := range strings.Split(ref, "\n") {
		if parts := strings.Split(line, "|"); len(parts) > 2 && strings.HasPrefix(line, "| `") {
			cells = append(cells, parts[1])
		}
	}
	require.NotEmpty(t, cells)
	code := regexp.MustCompile("`([^`]+)`")
	paths := keyPaths(reflect.TypeFor[Config](), "")
	require.Contains(t, paths, "state.spool_max_bytes")
	require.Contains(t, paths, "webhooks[].basic_auth.password")
	for _, p := range paths {
		section, leaf := "", p
		if i := strings.LastIndex(p, "."); i >= 0 {
			section, leaf = p[:i+1], p[i+1:]
		}
		found := false
		for _, c := range cells {
			names := code.FindAllStringSubmatch(c, -1)
			if len(names) == 0 || !strings.HasPrefix(names[0][1], section) {
				continue
			}
			for _, n := range names {
				for _, part := range strings.Split(strings.TrimPrefix(n[1], section), "/") {
					found = found || part == leaf
				}
			}
		}
		require.True(t, found, "README.md's configuration reference has no row for %s", p)
	}
}

// Inline tables and mapping_file together are an error whichever comes first in the file
// (before the tagged structs, mapping_file first and tables after silently used the tables).
func TestTablesAndMappingFileTogether(t *testing.T) {
	t.Parallel()
	for _, text := range []string{good + "mapping_file: m.yaml\n", "mapping_file: m.yaml\n" + good} {
		msg := parseErr(t, text, fullEnv)
		require.Contains(t, msg, "mapping_file: both tables and mapping_file are set")
	}
}
