package webhook

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

type replayResult string

func (r replayResult) String() string { return string(r) }

// A quarantined request is replayed through decode and the recorder; what is done with for
// good (recorded, not a row event, an unmapped table) is reported ok, the rest is kept.
func TestReplay(t *testing.T) {
	t.Parallel()
	row := phpRow(`"$id":"r1"`, `"$databaseId":"main"`, `"$tableId":"posts"`, `"$updatedAt":"2026-03-26T10:00:00.000+00:00"`)
	rowHeaders := map[string]string{HeaderEvents: "databases.main.tables.posts.rows.r1.update"}
	mapped := func(k connector.TableKey) bool { return k.Table == "posts" }
	var recorded []string
	record := func(_ context.Context, ch connector.Change) (replayResult, error) {
		if ch.RowID == "fail" {
			return "", errors.New("store down")
		}
		recorded = append(recorded, ch.Key.String()+"/"+ch.RowID)
		return "recorded", nil
	}
	for _, tc := range []struct {
		name    string
		headers map[string]string
		body    []byte
		ok      bool
		result  string
	}{
		{"recorded", rowHeaders, row, true, "recorded"},
		{"not a row event", map[string]string{HeaderEvents: "users.u1.create"}, row, true, "ignored: not a row event"},
		{"undecodable", rowHeaders, []byte(`{`), false, "still not decodable: "},
		{"unmapped", map[string]string{HeaderEvents: "databases.main.tables.other.rows.r1.update"},
			phpRow(`"$id":"r1"`, `"$databaseId":"main"`, `"$tableId":"other"`, `"$updatedAt":"2026-03-26T10:00:00.000+00:00"`), true, "ignored: table main/other is not mapped"},
		{"not recorded", map[string]string{HeaderEvents: "databases.main.tables.posts.rows.fail.update"},
			phpRow(`"$id":"fail"`, `"$databaseId":"main"`, `"$tableId":"posts"`, `"$updatedAt":"2026-03-26T10:00:00.000+00:00"`), false, "not recorded: store down"},
	} {
		ok, result := Replay(context.Background(), tc.headers, tc.body, mapped, record)
		require.Equal(t, tc.ok, ok, tc.name)
		require.Contains(t, result, tc.result, tc.name)
	}
	require.Equal(t, []string{"main/posts/r1"}, recorded)

	// A replayed change keeps the delivery's acting user and event, and says it was replayed.
	var got connector.Change
	ok, _ := Replay(context.Background(), map[string]string{HeaderEvents: rowHeaders[HeaderEvents], HeaderUserID: "u42"}, row, mapped,
		func(_ context.Context, ch connector.Change) (replayResult, error) { got = ch; return "recorded", nil })
	require.True(t, ok)
	require.Equal(t, "u42", got.Actor)
	require.Equal(t, "databases.main.tables.posts.rows.r1.update", got.Event)
	require.Equal(t, connector.SourceReplay, got.Source)
}
