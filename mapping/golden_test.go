package mapping

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

var update = flag.Bool("update", false, "rewrite the golden meilisearch.json and postgres.json files")

// testEnv is the environment the golden mappings expand ${VAR} with.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{"POSTS_INDEX": "posts_v2"}[name]
	return v, ok
}

func identity(s string) string { return s }

// TestGolden runs every testdata/<case>: mapping.yaml (a `tables:` file), row.json (one row,
// or a list of rows projected in turn), and the expected meilisearch.json / postgres.json
// (one value per row: the document / column→value object, null when `where` does not match,
// {"error": "..."} when the row fails). error.txt, when present, holds a substring that some
// row's error must contain.
func TestGolden(t *testing.T) {
	dirs, err := os.ReadDir("testdata")
	require.NoError(t, err)
	n := 0
	for _, de := range dirs {
		if !de.IsDir() || de.Name() == "fuzz" {
			continue
		}
		n++
		dir := filepath.Join("testdata", de.Name())
		t.Run(de.Name(), func(t *testing.T) { runGolden(t, dir) })
	}
	require.GreaterOrEqual(t, n, 15, "golden cases")
}

func loadGoldenMapping(t testing.TB, dir string) *Mapping {
	tables, err := LoadFile(filepath.Join(dir, "mapping.yaml"), testEnv)
	require.NoError(t, err)
	m, err := New(tables, "")
	require.NoError(t, err)
	return m
}

func loadGoldenRows(t testing.TB, dir string) (rows []json.RawMessage, single bool) {
	raw, err := os.ReadFile(filepath.Join(dir, "row.json"))
	require.NoError(t, err)
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '[' {
		require.NoError(t, json.Unmarshal(raw, &rows))
		return rows, false
	}
	return []json.RawMessage{raw}, true
}

// tableFor picks the mapped table of a row: by its $databaseId / $tableId when it has them,
// else the first table of the mapping.
func tableFor(m *Mapping, r Row) (*Table, connector.TableKey) {
	first := m.Tables[0]
	key := connector.TableKey{Database: first.Database, Table: first.Table}
	if db, ok := r["$databaseId"].(string); ok {
		key.Database = db
	}
	if tb, ok := r["$tableId"].(string); ok {
		key.Table = tb
	}
	if key.Database == "*" {
		key.Database = "main"
	}
	return m.Lookup(key), key
}

func runGolden(t *testing.T, dir string) {
	m := loadGoldenMapping(t, dir)
	rows, single := loadGoldenRows(t, dir)
	var meili, pg []any
	var errs []string
	hasMeili, hasPG := false, false
	for _, tbl := range m.Tables {
		hasMeili = hasMeili || tbl.Meili != nil
		hasPG = hasPG || tbl.PG != nil
	}
	const notMapped = "(table not mapped to this sink)"
	for _, raw := range rows {
		r, err := DecodeRow(raw)
		require.NoError(t, err)
		tbl, key := tableFor(m, r)
		require.NotNil(t, tbl, "no table for %s", key)
		matches := tbl.Matches(r)
		if tbl.Meili == nil && hasMeili {
			meili = append(meili, notMapped)
		}
		if tbl.PG == nil && hasPG {
			pg = append(pg, notMapped)
		}
		if tbl.Meili != nil {
			switch doc, err := tbl.MeiliDocument(r, key, identity); {
			case !matches:
				meili = append(meili, nil)
			case err != nil:
				require.True(t, connector.IsPermanent(err), "errors are permanent: %v", err)
				errs = append(errs, err.Error())
				meili = append(meili, map[string]any{"error": err.Error()})
			default:
				meili = append(meili, doc)
			}
		}
		if tbl.PG != nil {
			switch vals, err := tbl.PostgresValues(r); {
			case !matches:
				pg = append(pg, nil)
			case err != nil:
				require.True(t, connector.IsPermanent(err), "errors are permanent: %v", err)
				errs = append(errs, err.Error())
				pg = append(pg, map[string]any{"error": err.Error()})
			default:
				require.Len(t, vals, len(tbl.PG.Columns))
				obj := map[string]any{}
				for i, c := range tbl.PG.Columns {
					requireGoType(t, c, vals[i])
					obj[c.Name] = renderPG(c, vals[i])
				}
				pg = append(pg, obj)
			}
		}
	}
	checkGolden(t, filepath.Join(dir, "meilisearch.json"), meili, single)
	checkGolden(t, filepath.Join(dir, "postgres.json"), pg, single)
	if want, err := os.ReadFile(filepath.Join(dir, "error.txt")); err == nil {
		require.Contains(t, strings.Join(errs, "\n"), strings.TrimSpace(string(want)))
	} else {
		require.Empty(t, errs, "rows failed but the case has no error.txt")
	}
}

func checkGolden(t *testing.T, file string, got []any, single bool) {
	if got == nil {
		_, err := os.Stat(file)
		require.True(t, os.IsNotExist(err), "%s exists but the mapping has no such sink", file)
		return
	}
	var v any = got
	if single {
		v = got[0]
	}
	actual := canonicalJSON(t, mustMarshal(t, v))
	if *update {
		require.NoError(t, os.WriteFile(file, []byte(actual), 0o644))
		return
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err, "run go test ./mapping/ -run TestGolden -update to create it, then check it by hand")
	require.Equal(t, canonicalJSON(t, want), actual, file)
}

func mustMarshal(t *testing.T, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(v))
	return b.Bytes()
}

// canonicalJSON re-indents JSON with sorted keys and numbers kept verbatim.
func canonicalJSON(t *testing.T, b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "%s", b)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(v))
	return out.String()
}

// renderPG shows a Postgres value as JSON: times as RFC 3339 (UTC) or dates, jsonb inline.
func renderPG(c Column, v any) any {
	switch x := v.(type) {
	case time.Time:
		if c.Type == "date" {
			return x.Format(time.DateOnly)
		}
		return x.UTC().Format(time.RFC3339Nano)
	case json.RawMessage:
		return x
	case int32:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	}
	return v
}

// requireGoType checks that a value has the Go type documented for its column type.
func requireGoType(t testing.TB, c Column, v any) {
	if v == nil {
		return
	}
	want := map[string][]string{
		"text": {"string"}, "bigint": {"int64"}, "integer": {"int32"}, "double precision": {"float64"},
		"numeric": {"string"}, "boolean": {"bool"}, "timestamptz": {"time.Time"}, "date": {"time.Time"},
		"jsonb": {"json.RawMessage"}, "text[]": {"[]string", "[]*string"}, "bigint[]": {"[]int64", "[]*int64"},
	}[c.Type]
	require.Contains(t, want, fmt.Sprintf("%T", v), "column %q of type %s", c.Name, c.Type)
}

// The warehouse projection of a row decoded with only the members it reads
// (DecodeRowForPostgres) is the projection of the fully decoded row, in every golden case:
// the same values, the same filter decision, the same $createdAt.
func TestDecodeRowForPostgresProjectsTheSame(t *testing.T) {
	dirs, err := os.ReadDir("testdata")
	require.NoError(t, err)
	checked := 0
	for _, dir := range dirs {
		d := filepath.Join("testdata", dir.Name())
		if _, err := os.Stat(filepath.Join(d, "row.json")); err != nil || !dir.IsDir() {
			continue
		}
		tables, err := LoadFile(filepath.Join(d, "mapping.yaml"), testEnv)
		if err != nil {
			continue // the cases of invalid mappings
		}
		m, err := New(tables, "")
		if err != nil {
			continue
		}
		rows, _ := loadGoldenRows(t, d)
		for _, tbl := range m.Tables {
			if tbl.PG == nil {
				continue
			}
			for _, raw := range rows {
				full, err := DecodeRow(raw)
				require.NoError(t, err, d)
				part, err := tbl.DecodeRowForPostgres(raw)
				require.NoError(t, err, d)
				require.Less(t, len(part), len(full)+1, d)
				require.Equal(t, tbl.Matches(full), tbl.Matches(part), d)
				fv, ferr := tbl.PostgresValues(full)
				pv, perr := tbl.PostgresValues(part)
				require.Equal(t, ferr, perr, d)
				require.Equal(t, fv, pv, "%s: %s", d, raw)
				fc, fok := full.CreatedAt()
				pc, pok := part.CreatedAt()
				require.Equal(t, fok, pok, d)
				require.True(t, fc.Equal(pc), d)
				checked++
			}
		}
	}
	require.Greater(t, checked, 10, "golden rows projected")
}

// The Meilisearch projection of a row decoded with only the members it reads
// (DecodeRowForMeili) is the document of the fully decoded row, in every golden case: the
// same document, the same filter decision.
func TestDecodeRowForMeiliProjectsTheSame(t *testing.T) {
	dirs, err := os.ReadDir("testdata")
	require.NoError(t, err)
	checked, narrowed := 0, 0
	for _, dir := range dirs {
		d := filepath.Join("testdata", dir.Name())
		if _, err := os.Stat(filepath.Join(d, "row.json")); err != nil || !dir.IsDir() {
			continue
		}
		tables, err := LoadFile(filepath.Join(d, "mapping.yaml"), testEnv)
		if err != nil {
			continue // the cases of invalid mappings
		}
		m, err := New(tables, "")
		if err != nil {
			continue
		}
		rows, _ := loadGoldenRows(t, d)
		for _, tbl := range m.Tables {
			if tbl.Meili == nil {
				continue
			}
			for _, raw := range rows {
				full, err := DecodeRow(raw)
				require.NoError(t, err, d)
				part, err := tbl.DecodeRowForMeili(raw)
				require.NoError(t, err, d)
				require.LessOrEqual(t, len(part), len(full), d)
				if len(part) < len(full) {
					narrowed++
				}
				require.Equal(t, tbl.Matches(full), tbl.Matches(part), d)
				fd, ferr := tbl.MeiliDocument(full, tbl.Key(), func(s string) string { return s })
				pd, perr := tbl.MeiliDocument(part, tbl.Key(), func(s string) string { return s })
				require.Equal(t, ferr, perr, d)
				require.Equal(t, fd, pd, "%s: %s", d, raw)
				checked++
			}
		}
	}
	require.Greater(t, checked, 10, "golden rows projected")
	require.Positive(t, narrowed, "some golden rows decoded narrower")
}
