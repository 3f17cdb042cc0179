package mapping

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/internal/yamlnode"
)

func parseHistoryYAML(t *testing.T, src string) (*Mapping, error) {
	t.Helper()
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(src), &root))
	d := yamlnode.NewNode("m.yaml", &root, func(string) (string, bool) { return "", false })
	tables := ParseTables(d, root.Content[0], "tables")
	if err := d.Errs.Err(); err != nil {
		return nil, err
	}
	return New(tables, "wh")
}

// postgres.history takes true, false, or {retention: duration}; anything else is an error
// naming the fix, and its relations must not clash with another table's.
func TestHistoryConfig(t *testing.T) {
	t.Parallel()
	table := func(history string) string {
		return "- database: main\n  table: posts\n  postgres:\n    columns: {title: text}\n    history: " + history + "\n"
	}
	for _, tc := range []struct {
		history   string
		on        bool
		retention time.Duration
	}{
		{"true", true, 0}, {"false", false, 0}, {"{}", true, 0}, {"{retention: 2160h}", true, 2160 * time.Hour}, {"{retention: 0}", true, 0},
	} {
		m, err := parseHistoryYAML(t, table(tc.history))
		require.NoError(t, err, tc.history)
		h := m.Lookup(m.Tables[0].Key()).PG.History
		require.Equal(t, tc.on, h != nil, tc.history)
		if h != nil {
			require.Equal(t, tc.retention, h.Retention, tc.history)
		}
	}
	for history, problem := range map[string]string{
		"maybe":             "must be true, false or {retention: duration}",
		"[1]":               "must be true, false or {retention: duration}",
		"{retention: 90d}":  "must be a non-negative duration",
		"{retension: 24h}":  "retension",
		"{retention: -24h}": "must be a non-negative duration",
	} {
		_, err := parseHistoryYAML(t, table(history))
		require.ErrorContains(t, err, problem, history)
	}
	_, err := parseHistoryYAML(t, table("true")+"- database: main\n  table: posts_history\n  postgres:\n    columns: {title: text}\n")
	require.ErrorContains(t, err, `table "posts_history" clashes with history table of main/posts`)

	m, err := parseHistoryYAML(t, table("{retention: 24h}"))
	require.NoError(t, err)
	plan := m.Plan()
	require.Contains(t, plan, `history:       "wh"."posts_history", view posts_history_changes (versions kept while their $updatedAt is within 24h0m0s)`)
	require.Equal(t, 1, strings.Count(plan, "CREATE SCHEMA"), plan)
	require.Contains(t, plan, `CREATE OR REPLACE VIEW "wh"."posts_history_changes"`)
}

// The mapping reference (docs/mapping.md) names every key of the postgres section and of
// postgres.history, so a key added here is documented.
func TestMappingReferenceListsPostgresKeys(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docs/mapping.md")
	require.NoError(t, err)
	doc := string(b)
	for _, k := range append(append([]string(nil), pgKeys...), historyKeys...) {
		require.True(t, strings.Contains(doc, "      "+k+":") || strings.Contains(doc, "{"+k+":") || strings.Contains(doc, "`"+k+"`"),
			"docs/mapping.md does not show postgres key %q", k)
	}
}
