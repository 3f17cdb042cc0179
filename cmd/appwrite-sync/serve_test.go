package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
)

// state.group_commit_wait: 0 means no wait, not the recorder's default: the value goes to
// ledger.RecorderOptions.MaxWait as it is, where 0 is no wait.
func TestGroupCommitWaitZeroMeansNoWait(t *testing.T) {
	t.Parallel()
	parse := func(extra string) *config.Config {
		text := `webhooks: [{url: "https://sync.example.com/hook", signing_keys: [k]}]
admin: {listen: ""}
state: {database_url: "postgres://localhost/x"` + extra + `}
tables: [{database: main, table: posts, postgres: {columns: {title: text}}}]
`
		c, err := config.Parse("config.yaml", []byte(text), func(string) (string, bool) { return "", false })
		require.NoError(t, err)
		return c
	}
	require.Equal(t, ledger.MaxWaitDefault, parse("").State.GroupCommitWait)
	require.Equal(t, time.Duration(0), parse(", group_commit_wait: 0s").State.GroupCommitWait)
	require.Equal(t, 3*time.Millisecond, parse(", group_commit_wait: 3ms").State.GroupCommitWait)
}
