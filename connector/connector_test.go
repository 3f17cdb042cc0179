package connector

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestVersionOrder(t *testing.T) {
	t0 := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	up := Version{UpdatedAt: t0, Op: OpUpsert, Hash: []byte{9}}
	del := Version{UpdatedAt: t0, Op: OpDelete, Hash: []byte{1}}
	later := Version{UpdatedAt: t0.Add(time.Millisecond), Op: OpUpsert}
	require.Equal(t, 1, del.Compare(up), "a delete orders after an upsert at the same instant")
	require.Equal(t, 1, later.Compare(del))
	require.Equal(t, -1, up.Compare(Version{UpdatedAt: t0, Op: OpUpsert, Hash: []byte{10}}))
	require.Zero(t, up.Compare(up))
	// Instants compare across offsets.
	ist := time.FixedZone("IST", 5*3600+1800)
	require.Zero(t, Version{UpdatedAt: t0.In(ist), Op: OpUpsert}.Compare(Version{UpdatedAt: t0, Op: OpUpsert}))
}

func TestContentHashIgnoresRoutingKeysAndKeyOrder(t *testing.T) {
	a, err := ContentHash([]byte(`{"$id":"x","$tableId":"posts","$databaseId":"main","title":"a","n":5}`))
	require.NoError(t, err)
	b, err := ContentHash([]byte(`{"n":5,"title":"a","$collectionId":"posts","$collection":"c","$tenant":1,"$id":"x"}`))
	require.NoError(t, err)
	require.Equal(t, a, b)
	c, err := ContentHash([]byte(`{"$id":"x","title":"b","n":5}`))
	require.NoError(t, err)
	require.NotEqual(t, a, c)
	_, err = ContentHash([]byte(`[1]`))
	require.Error(t, err)
	_, err = ContentHash([]byte(`null`))
	require.Error(t, err)
}

func TestTableKey(t *testing.T) {
	k, err := ParseTableKey("main/posts")
	require.NoError(t, err)
	require.Equal(t, "main/posts", k.String())
	for _, bad := range []string{"main", "/posts", "main/", "a/b/c"} {
		_, err := ParseTableKey(bad)
		require.Error(t, err, bad)
	}
}
