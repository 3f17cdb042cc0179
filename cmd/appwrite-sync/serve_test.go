package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
)

// state.group_commit_wait: 0 means no wait, not the recorder's default.
func TestGroupCommitWaitZeroMeansNoWait(t *testing.T) {
	require.Equal(t, ledger.NoWait, recorderWait(0))
	require.Equal(t, 3*time.Millisecond, recorderWait(3*time.Millisecond))
}
