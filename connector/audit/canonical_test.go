package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/audit"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtext"
)

// canonicalSeeds are payloads as Appwrite sends them (PHP's json_encode: non-ASCII and / as
// escapes) and the corners of jsonb's output: key order by length then bytes, duplicate keys,
// numbers as numeric writes them, every escape.
var canonicalSeeds = []string{
	`{"$id":"r1","$sequence":"1","$databaseId":"main","$tableId":"posts","$createdAt":"2026-01-01T00:00:00.000+00:00","$permissions":["read(\"any\")"],"title":"Caf\u00e9 \/ Montr\u00e9al","views":12,"author":{"$id":"a1","name":"Ada"}}`,
	`{}`, `[]`, `"text"`, `12.50`, `null`, `true`, `[1,"a",null,false,{}]`,
	`{"b":1,"aa":2,"a":3,"a":4,"é":5,"ab":6,"Z":7,"":8}`,
	`{"dup":{"x":1,"x":[1,2]},"dup":{"y":{"k":"v","k":"w"}}}`,
	`[-0,-0.0,0,0.000,1.50,-0.10,-12,12345678901234567890.0001,3.14159265358979323846264338327950288]`,
	`{"s":"\u00e9\/\u001f\u007f\t\b\f\r\n\"\\\u0022\u005c\u2028\u2029 \ud83d\ude00 <>&' \u0001"}`,
	"{\"raw\":\"é 😀 \x7f \u2028\",\"k\\u00e9y\":1,\"k\\n\":2,\"k\\\"\":3}",
	" \t{ \"a\" :\r\n[ 1 , { \"c\" : null } ] , \"b\" : \"x\" }\n ",
	`{"n":1e2,"m":[1.5E-3,-0e0,2e+3,1.0E-7,-0.001e3,0.000e2,123.456e1]}`, // PHP writes small floats so; numeric writes them out
	`{"big":1e150}`, // an exponent the service leaves to the warehouse
	`{"deep":` + strings.Repeat(`[`, 200) + strings.Repeat(`]`, 200) + `}`,
}

// The delivery's rendering in the service is what Postgres renders for canonicalSQL (and so
// what Verify recomputes from the warehouse): for every seed, header values with escapes,
// null ids, and no events at all. Where the service declines, the warehouse renders.
func FuzzCanonicalFormMatchesPostgres(f *testing.F) {
	for _, s := range canonicalSeeds {
		f.Add(s, "databases.main.tables.posts.rows.r1.update,databases.*.tables.*.rows.*", "u1")
	}
	f.Add(`{"a":1}`, "", "")
	f.Add(`{"a":1}`, "users.u1.create", "u\"se\\r\té")
	f.Add(`{"a":1}`, ",x,", "𝄞")
	pool, err := pgxpool.New(context.Background(), pgtest.NewDatabase(f))
	require.NoError(f, err)
	f.Cleanup(pool.Close)
	at := time.Date(2026, 12, 7, 1, 2, 3, 456789000, time.FixedZone("x", 3600))
	wh := "wh\"1"
	f.Fuzz(func(t *testing.T, payload, events, user string) {
		if events != pgtext.Clean(events, 0) || user != pgtext.Clean(user, 0) {
			return // headers are kept cleaned (NewEntry)
		}
		var u *string
		if user != "" {
			u = &user
		}
		canon, pl, ok := audit.RenderInGo(at, &wh, nil, u, events, []byte(payload))
		if !ok {
			return // left to the warehouse
		}
		var evs []string
		var event *string
		if events != "" {
			evs = strings.Split(events, ",")
			event = &evs[0]
		} else {
			evs = []string{}
		}
		var wantCanon, wantPl string
		require.NoError(t, pool.QueryRow(context.Background(), audit.RenderSQL, at, &wh, nil, u, evs, event, payload).Scan(&wantCanon, &wantPl), payload)
		require.Equal(t, wantPl, pl, payload)
		require.Equal(t, wantCanon, canon, payload)
	})
}

// The service renders every seed but the one with a large exponent and the deep one.
func TestCanonicalSeedsRenderedInGo(t *testing.T) {
	t.Parallel()
	declined := 0
	for _, s := range canonicalSeeds {
		if _, _, ok := audit.RenderInGo(time.Now(), nil, nil, nil, "", []byte(s)); !ok {
			declined++
		}
	}
	require.Equal(t, 2, declined)
}
