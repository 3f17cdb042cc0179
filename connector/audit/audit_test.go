package audit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/audit"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var patterns = []string{"users.*", "buckets.*.files.*", "databases.*.tables.*.rows.*"}

type bundle struct {
	pool *pgxpool.Pool
	rec  *audit.Recorder
	del  *audit.Deliverer
	m    *metrics.Metrics
}

func quiet() *logrus.Entry {
	l := logrus.New()
	l.SetLevel(logrus.ErrorLevel)
	return logrus.NewEntry(l)
}

func setup(t *testing.T) *bundle {
	t.Helper()
	url := pgtest.NewMigratedDatabase(t, migrations.Up)
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b := &bundle{pool: pool, m: metrics.New()}
	b.rec = b.recorder(t)
	b.del = b.deliverer(0, time.Now)
	require.NoError(t, b.del.EnsureTable(context.Background()))
	return b
}

func (b *bundle) recorder(t *testing.T) *audit.Recorder {
	m, err := audit.NewMatcher(patterns)
	require.NoError(t, err)
	r := audit.NewRecorder(b.pool, audit.RecorderOptions{Matcher: m, Metrics: b.m, Log: quiet()})
	t.Cleanup(r.Close)
	return r
}

func (b *bundle) deliverer(retention time.Duration, now func() time.Time) *audit.Deliverer {
	return audit.NewDeliverer(b.pool, b.pool, audit.DelivererOptions{Schema: "wh", Table: "audit_log", Retention: retention,
		Metrics: b.m, Log: quiet(), Now: now})
}

// delivery is one signed-looking Appwrite delivery (the recorder trusts the handler's check).
type dlv struct {
	h    http.Header
	body []byte
}

func delivery(events, user, body string) dlv {
	h := http.Header{}
	h.Set(audit.HeaderEvents, events)
	h.Set(audit.HeaderID, "wh1")
	h.Set(audit.HeaderProjectID, "proj")
	if user != "" {
		h.Set(audit.HeaderUserID, user)
	}
	return dlv{h, []byte(body)}
}

func userEvent(id, action string) dlv {
	return delivery(fmt.Sprintf("users.%[1]s.%[2]s,users.*.%[2]s,users.%[1]s,users.*", id, action), "u-admin",
		fmt.Sprintf(`{"$id":%q,"name":"Ada","email":"ada@example.com"}`, id))
}

func fileEvent(bucket, id string) dlv {
	return delivery(fmt.Sprintf("buckets.%[1]s.files.%[2]s.create,buckets.*.files.%[2]s.create,buckets.%[1]s.files.*.create,buckets.*.files.*.create,buckets.%[1]s.files.%[2]s,buckets.%[1]s.files.*,buckets.*.files.*,buckets.%[1]s,buckets.*", bucket, id),
		"", fmt.Sprintf(`{"$id":%q,"bucketId":%q,"name":"a\/b.png","sizeOriginal":5.0}`, id, bucket))
}

func (b *bundle) audit(t *testing.T, d dlv) {
	t.Helper()
	require.NoError(t, b.rec.Audit(context.Background(), d.h, d.body, time.Now()))
}

func (b *bundle) verify(t *testing.T) (audit.Report, error) {
	t.Helper()
	b.deliverAll(t)
	return audit.Verify(context.Background(), b.pool, "wh", "audit_log")
}

// deliverAll delivers until the warehouse holds every entry of the state store's log. One
// Deliver may leave some behind: it reads only entries older than every running transaction
// of the cluster, and parallel tests share the cluster.
func (b *bundle) deliverAll(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := b.del.Deliver(context.Background())
		require.NoError(t, err)
		return b.count(t, `SELECT count(*) FROM appwrite_sync.audit_log l, appwrite_sync.audit_delivery c
			WHERE (l.tx, l.seq) > (c.tx, c.seq)`) == 0
	}, 10*time.Second, 5*time.Millisecond)
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestValidatePattern(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"users.*", "users.*.create", "buckets.*.files.*", "databases.main.tables.posts.rows.*", "tablesdb.*.tables.*.rows.*.update", "functions.f-1.executions.*", "users.a.b_c"} {
		require.NoError(t, audit.ValidatePattern(p), p)
	}
	for p, want := range map[string]string{
		"":              "empty",
		"users.*,teams": "comma",
		"users. *":      "white space",
		"users..*":      "empty segment",
		"users.":        "empty segment",
		"*":             "resource type",
		"Users.*":       "resource type",
		"users.a*":      `"*" is part of a segment`,
		"users.$id":     `contains '$'`,
	} {
		err := audit.ValidatePattern(p)
		var pe *audit.PatternError
		require.True(t, errors.As(err, &pe), p)
		require.Contains(t, err.Error(), want, p)
	}
}

func TestMatcherIsIntersection(t *testing.T) {
	t.Parallel()
	m, err := audit.NewMatcher([]string{"users.*", "buckets.b1.files.*"})
	require.NoError(t, err)
	require.True(t, m.Selects(userEvent("u1", "create").h.Get(audit.HeaderEvents)))
	require.True(t, m.Selects(fileEvent("b1", "f1").h.Get(audit.HeaderEvents)))
	h := fileEvent("b2", "f1").h // another bucket: its list has buckets.*.files.* but not buckets.b1.files.*
	require.False(t, m.Selects(h.Get(audit.HeaderEvents)))
	require.False(t, m.Selects("databases.main.tables.posts.rows.r1.update,databases.*.tables.*.rows.*.update,databases.*.tables.*.rows.*"))
	require.False(t, m.Selects("teams.users.create")) // "users.*" is not a substring match
	require.False(t, m.Selects(""))
	_, err = audit.NewMatcher([]string{"users.*", "users.x*"})
	require.ErrorContains(t, err, "audit.events[1]")
}

// User and file events are recorded, chained and delivered; a byte-identical redelivery is
// recorded once; verify passes, then names the entry an UPDATE changed.
func TestRecordDeliverVerifyThenTamper(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.audit(t, userEvent("u1", "create"))
	b.audit(t, fileEvent("b1", "f1"))
	b.audit(t, userEvent("u1", "create")) // byte-identical redelivery
	b.audit(t, userEvent("u1", "update"))
	d := userEvent("u2", "create")
	b.audit(t, d)
	h2 := d.h.Clone()
	h2.Set(audit.HeaderEvents, "users.u2.create,users.*") // same body, other header: another delivery
	b.audit(t, dlv{h2, d.body})

	rep, err := b.verify(t)
	require.NoError(t, err)
	require.Equal(t, int64(5), rep.Entries)
	require.Equal(t, int64(1), rep.First)
	require.Equal(t, audit.GenesisHash, rep.Start)
	var head string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT head_hash FROM appwrite_sync.audit_delivery`).Scan(&head))
	require.Equal(t, head, rep.Head)
	require.Equal(t, int64(5), b.count(t, `SELECT count(*) FROM wh.audit_log`))
	require.Equal(t, int64(1), b.count(t, `SELECT count(*) FROM wh.audit_log WHERE event = 'buckets.b1.files.f1.create' AND user_id IS NULL AND payload->>'name' = 'a/b.png'`))
	require.Equal(t, int64(1), b.count(t, `SELECT count(*) FROM wh.audit_log WHERE seq = 1 AND event = 'users.u1.create' AND user_id = 'u-admin'
		AND webhook_id = 'wh1' AND project_id = 'proj' AND events = '{users.u1.create,users.*.create,users.u1,users.*}'`))

	_, err = b.pool.Exec(ctx, `UPDATE wh.audit_log SET payload = jsonb_set(payload, '{name}', '"Eve"') WHERE seq = 3`)
	require.NoError(t, err)
	_, err = audit.Verify(ctx, b.pool, "wh", "audit_log")
	var be *audit.BrokenError
	require.ErrorAs(t, err, &be)
	require.Equal(t, int64(3), be.Seq)
	require.Contains(t, be.Reason, "does not match its hash")
}

func TestVerifyNamesTheEntryAfterADelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 5 {
		b.audit(t, userEvent(fmt.Sprintf("u%d", i), "create"))
	}
	_, err := b.verify(t)
	require.NoError(t, err)
	_, err = b.pool.Exec(context.Background(), `DELETE FROM wh.audit_log WHERE seq = 3`)
	require.NoError(t, err)
	_, err = audit.Verify(context.Background(), b.pool, "wh", "audit_log")
	var be *audit.BrokenError
	require.ErrorAs(t, err, &be)
	require.Equal(t, int64(4), be.Seq)
	require.Contains(t, be.Reason, "missing")

	// A rewritten hash to hide an edit breaks the next entry's link instead.
	b2 := setup(t)
	for i := range 3 {
		b2.audit(t, userEvent(fmt.Sprintf("u%d", i), "create"))
	}
	_, err = b2.verify(t)
	require.NoError(t, err)
	_, err = b2.pool.Exec(context.Background(), `UPDATE wh.audit_log SET hash = repeat('a', 64) WHERE seq = 2`)
	require.NoError(t, err)
	_, err = audit.Verify(context.Background(), b2.pool, "wh", "audit_log")
	require.ErrorAs(t, err, &be)
	require.Equal(t, int64(2), be.Seq)
}

// Two replicas record at once into one state store: one chain, no fork, no gap, and every
// distinct delivery once although each was sent to both.
func TestReplicasShareOneChain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := b.recorder(t)
	const n = 60
	var wg sync.WaitGroup
	for i := range n {
		for _, r := range []*audit.Recorder{b.rec, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := userEvent(fmt.Sprintf("u%d", i), "create")
				require.NoError(t, r.Audit(context.Background(), d.h, d.body, time.Now()))
			}()
		}
	}
	wg.Wait()
	del2 := b.deliverer(0, time.Now)
	var dw sync.WaitGroup
	for _, d := range []*audit.Deliverer{b.del, del2} {
		dw.Add(1)
		go func() { defer dw.Done(); _, err := d.Deliver(context.Background()); require.NoError(t, err) }()
	}
	dw.Wait()
	rep, err := b.verify(t)
	require.NoError(t, err)
	require.Equal(t, int64(n), rep.Entries)
	require.Equal(t, int64(n), b.count(t, `SELECT count(DISTINCT payload->>'$id') FROM wh.audit_log`))
}

// A restart (new recorder and deliverer on the same state store) continues the chain; a crash
// between the warehouse write and the delivery cursor copies the batch again harmlessly; each
// acknowledged delivery is in the log once.
func TestRestartKeepsTheLogExact(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for i := range 4 {
		b.audit(t, userEvent(fmt.Sprintf("u%d", i), "create"))
	}
	b.deliverAll(t)
	b.rec.Close()
	// The crash: the warehouse has the batch, the cursor never moved.
	_, err := b.pool.Exec(ctx, `UPDATE appwrite_sync.audit_delivery SET tx = '0', seq = 0, head_seq = 0, head_hash = $1`, audit.GenesisHash)
	require.NoError(t, err)

	b.rec = b.recorder(t)
	b.del = b.deliverer(0, time.Now)
	for i := range 6 { // two redeliveries of acknowledged events, four new ones
		b.audit(t, userEvent(fmt.Sprintf("u%d", i+2), "create"))
	}
	rep, err := b.verify(t)
	require.NoError(t, err)
	require.Equal(t, int64(8), rep.Entries)
	require.Equal(t, int64(8), b.count(t, `SELECT count(DISTINCT payload->>'$id') FROM wh.audit_log`))
	require.Equal(t, int64(8), b.count(t, `SELECT head_seq FROM appwrite_sync.audit_delivery`))
}

// Retention removes only the entries older than it (a prefix of the log), in both stores, and
// never an entry the warehouse does not have yet; verify still passes from the first kept
// entry.
func TestRetentionRemovesOnlyWhatIsDue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ages := []time.Duration{50 * time.Hour, 49 * time.Hour, 48*time.Hour + time.Second, 47 * time.Hour, 1 * time.Hour}
	for i, age := range ages {
		d := userEvent(fmt.Sprintf("u%d", i), "create")
		require.NoError(t, b.rec.Audit(ctx, d.h, d.body, now.Add(-age)))
	}
	b.deliverAll(t)
	// One more, old but not delivered yet: the state store keeps it.
	late := userEvent("late", "create")
	require.NoError(t, b.rec.Audit(ctx, late.h, late.body, now.Add(-100*time.Hour)))

	d := b.deliverer(48*time.Hour, func() time.Time { return now })
	state, wh, err := d.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), wh)
	require.Equal(t, int64(3), state)
	require.Equal(t, int64(3), b.count(t, `SELECT count(*) FROM appwrite_sync.audit_log`)) // u3, u4 and the undelivered one
	require.Equal(t, int64(4), b.count(t, `SELECT min(seq) FROM wh.audit_log`))

	rep, err := b.verify(t) // delivers "late" (seq 6) too
	require.NoError(t, err)
	require.Equal(t, int64(3), rep.Entries)
	require.Equal(t, int64(4), rep.First)
	require.NotEqual(t, audit.GenesisHash, rep.Start)

	// Everything due once more: "late" (received 100 h ago) is the newest entry of the log but
	// is removed only because every entry before it is due too.
	state, wh, err = b.deliverer(30*time.Minute, func() time.Time { return now }).Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), wh)
	require.Equal(t, int64(3), state)
	// The head survives retention: the next entry chains on.
	b.audit(t, userEvent("next", "create"))
	rep, err = b.verify(t)
	require.NoError(t, err)
	require.Equal(t, int64(1), rep.Entries)
	require.Equal(t, int64(7), rep.First)
}

// Bodies jsonb cannot hold are kept, wrapped, and still verify: those NewEntry finds, and one
// only jsonb refuses (a number numeric cannot hold), which the delivery wraps. Bodies the
// service leaves to the warehouse to render (an exponent beyond ±100, deep nesting) are kept as they are.
func TestOddBodiesAreKept(t *testing.T) {
	t.Parallel()
	b := setup(t)
	deep := `{"deep":` + strings.Repeat(`[`, 300) + strings.Repeat(`]`, 300) + `}`
	for _, body := range []string{`not json`, `{"a":"\u0000"}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"b":1,"a":[1.0,2e3,"x\/y"]}`,
		`{"n":1e1000000}`, deep, `{"big":1e150}`} {
		d := userEvent("u1", "update")
		require.NoError(t, b.rec.Audit(context.Background(), d.h, []byte(body), time.Now()))
	}
	rep, err := b.verify(t)
	require.NoError(t, err)
	require.Equal(t, int64(8), rep.Entries)
	require.Equal(t, int64(5), b.count(t, `SELECT count(*) FROM wh.audit_log WHERE payload ? '$body_base64'`))
	require.Equal(t, int64(1), b.count(t, `SELECT count(*) FROM wh.audit_log WHERE payload = '{"b":1,"a":[1.0,2000,"x/y"]}'`))
	require.Equal(t, int64(1), b.count(t, `SELECT count(*) FROM wh.audit_log WHERE payload = $1::jsonb`, deep))
	require.Equal(t, int64(1), b.count(t, `SELECT count(*) FROM wh.audit_log WHERE payload = '{"big":1e150}'`))
}

// The SQL verifier docs/operations.md gives agrees with Verify: no row on an intact log, the
// changed entry after an UPDATE.
func TestDocumentedSQLVerifier(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/operations.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(doc), "The same check in SQL")
	require.True(t, ok)
	_, rest, ok = strings.Cut(rest, "```sql\n")
	require.True(t, ok)
	query, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	query = strings.ReplaceAll(query, "appwrite.audit_log", "wh.audit_log")

	b := setup(t)
	for i := range 4 {
		b.audit(t, userEvent(fmt.Sprintf("u%d", i), "create"))
	}
	b.audit(t, fileEvent("b1", "f1"))
	_, err = b.verify(t)
	require.NoError(t, err)
	ctx := context.Background()
	var seq int64
	require.ErrorIs(t, b.pool.QueryRow(ctx, query).Scan(&seq), pgx.ErrNoRows)
	_, err = b.pool.Exec(ctx, `UPDATE wh.audit_log SET user_id = 'someone-else' WHERE seq = 4`)
	require.NoError(t, err)
	require.NoError(t, b.pool.QueryRow(ctx, query).Scan(&seq))
	require.Equal(t, int64(4), seq)
}

// NewEntry wraps what jsonb would refuse (so an entry never fails the ledger's group it rides
// in) and nothing else.
func TestNewEntryWrapsWhatJsonbRefuses(t *testing.T) {
	t.Parallel()
	h := userEvent("u1", "create").h
	for body, wrapped := range map[string]bool{
		`{"a":"\u0000"}`:               true,
		`{"a":"\ud800"}`:               true,
		`{"a":"\udc00"}`:               true,
		`{"a":"\ud800\u0041"}`:         true,
		`{"a":"x\ud800"}`:              true,
		`{"a":"\ud83d\ude00"}`:         false,
		`{"a":"\\u0000","b":"\u00e9"}`: false,
		`{"a":"\u0001"}`:               false,
	} {
		e := audit.NewEntry(h, []byte(body), time.Now())
		require.Equal(t, wrapped, strings.Contains(string(e.Payload), "$body_base64"), body)
		// The entry of a row change (its body decoded: valid JSON and UTF-8) looks only for
		// what jsonb refuses, and finds the same.
		m, err := audit.NewMatcher(patterns)
		require.NoError(t, err)
		rec := audit.NewRecorder(nil, audit.RecorderOptions{Matcher: m})
		rec.Close()
		require.Equal(t, e.Payload, rec.Entry(h, []byte(body), time.Now()).Payload, body)
	}
}

// Backlog counts what is recorded and not delivered, with the oldest entry's age, and is empty
// once the warehouse holds every entry.
func TestBacklogCountsUndeliveredEntries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	n, lag, err := b.del.Backlog(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Zero(t, lag)

	start := time.Now()
	b.audit(t, userEvent("u1", "create"))
	b.audit(t, fileEvent("b1", "f1"))
	b.audit(t, userEvent("u1", "create")) // a redelivery: recorded once, so not counted twice
	b.audit(t, userEvent("u2", "create"))
	n, lag, err = b.del.Backlog(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
	require.Greater(t, lag, time.Duration(0))
	require.LessOrEqual(t, lag, time.Since(start)+time.Second) // the server's clock: a second of slack

	b.deliverAll(t)
	n, lag, err = b.del.Backlog(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Zero(t, lag)

	b.audit(t, userEvent("u3", "create"))
	n, _, err = b.del.Backlog(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "only the entry after the delivery's cursor")
}
