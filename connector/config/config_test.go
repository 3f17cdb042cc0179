package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/spool"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
)

const good = `listen: ":8080"
admin:
  listen: "127.0.0.1:9090"
  token: "${TOKEN}"
webhooks:
  - url: "https://sync.example.com/webhooks/appwrite"
    signing_keys: ["${SECRET}"]
state:
  database_url: "${DATABASE_URL}"
tables:
  - database: main
    table: posts
    postgres:
      columns:
        title: text
`

func env(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var fullEnv = env(map[string]string{"TOKEN": "0123456789abcdef-token", "SECRET": "s3cr3t-signing-key",
	"DATABASE_URL": "postgres://u:hunter2pw@localhost:5432/db"})

func TestGoodConfigAndDefaults(t *testing.T) {
	c, err := Parse("config.yaml", []byte(good), fullEnv)
	require.NoError(t, err)
	require.Equal(t, "/webhooks/appwrite", c.Webhooks[0].Path)
	require.Equal(t, []string{"s3cr3t-signing-key"}, c.Webhooks[0].SigningKeys)
	require.Equal(t, int64(webhook.MaxBodyBytesDefault), c.Limits.MaxBodyBytes)
	require.Equal(t, c.State.DatabaseURL, c.Warehouse.DatabaseURL, "warehouse defaults to the state store")
	require.Equal(t, WarehouseSchemaDefault, c.Warehouse.Schema)
	require.NotNil(t, c.Mapping)
	require.ElementsMatch(t, []string{"0123456789abcdef-token", "s3cr3t-signing-key", "hunter2pw"}, c.Secrets())
	require.NotContains(t, Redact(c.State.DatabaseURL), "hunter2pw")
}

func parseErr(t *testing.T, text string, e LookupEnv) string {
	t.Helper()
	_, err := Parse("config.yaml", []byte(text), e)
	require.Error(t, err)
	var ce connector.ConfigErrors
	require.True(t, errors.As(err, &ce), "want ConfigErrors, got %T", err)
	msg := err.Error()
	for _, s := range []string{"0123456789abcdef-token", "s3cr3t-signing-key", "hunter2pw"} {
		require.NotContains(t, msg, s, "a secret leaked into a config error")
	}
	return msg
}

func TestConfigErrorsNameFileLinePathAndFix(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"unknown key", strings.Replace(good, "listen: \":8080\"", "lisen: \":8080\"", 1),
			`config.yaml:1: lisen: unknown key "lisen"; did you mean "listen"?`},
		{"unknown nested key", strings.Replace(good, "  token:", "  tokn:", 1),
			`config.yaml:4: admin.tokn: unknown key "tokn"; did you mean "token"?`},
		{"bad type", good + "limits:\n  max_body_bytes: lots\n",
			`config.yaml:17: limits.max_body_bytes: must be an integer (got "lots")`},
		{"bad duration", good + "server:\n  shutdown_timeout: 5 minutes\n",
			`config.yaml:17: server.shutdown_timeout: must be a non-negative duration`},
		{"missing required url", strings.Replace(good, `  - url: "https://sync.example.com/webhooks/appwrite"`+"\n    signing_keys", "  - signing_keys", 1),
			`webhooks[0].url: url is required`},
		{"short admin token", strings.Replace(good, `"${TOKEN}"`, `"short"`, 1),
			`config.yaml:4: admin.token: admin.token is too short`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Contains(t, parseErr(t, c.text, fullEnv), c.want)
		})
	}
}

func TestMissingEnvVarIsNamedAndSecretsRedacted(t *testing.T) {
	msg := parseErr(t, good+"limits:\n  max_body_bytes: \"${SECRET}\"\n", env(map[string]string{"TOKEN": "0123456789abcdef-token", "SECRET": "s3cr3t-signing-key"}))
	require.Contains(t, msg, "config.yaml:9: state.database_url: environment variable DATABASE_URL is not set; export DATABASE_URL=... in the environment that runs appwrite-sync")
	require.Contains(t, msg, "or write a default in config.yaml: ${DATABASE_URL:-value}")
	require.Equal(t, 1, strings.Count(msg, "state.database_url"), "one problem per unset variable")
	require.Contains(t, msg, `config.yaml:17: limits.max_body_bytes: must be an integer (got "<from environment, redacted>")`)
}

func TestEnvDefaultsAndAllErrorsAtOnce(t *testing.T) {
	text := strings.Replace(good, `"${DATABASE_URL}"`, `"${DATABASE_URL:-postgres://localhost/x}"`, 1)
	c, err := Parse("config.yaml", []byte(text), env(map[string]string{"TOKEN": "0123456789abcdef-token", "SECRET": "k"}))
	require.NoError(t, err)
	require.Equal(t, "postgres://localhost/x", c.State.DatabaseURL)

	bad := strings.Replace(strings.Replace(good, "listen: \":8080\"", "lisen: 1", 1), "  token:", "  tokn:", 1)
	msg := parseErr(t, bad, fullEnv)
	require.Contains(t, msg, "lisen")
	require.Contains(t, msg, "tokn")
}

func TestDuplicatePathsAndBasicAuthHalf(t *testing.T) {
	text := strings.Replace(good, `    signing_keys: ["${SECRET}"]`, `    signing_keys: ["${SECRET}"]
    basic_auth: {username: u}
  - url: "https://other.example.com/webhooks/appwrite"
    signing_keys: ["k2"]`, 1)
	msg := parseErr(t, text, fullEnv)
	require.Contains(t, msg, "basic_auth needs both username and password")
	require.Contains(t, msg, "path /webhooks/appwrite is already used by webhooks[0]")
}

func TestReconcileDefaultsAndValues(t *testing.T) {
	c, err := Parse("config.yaml", []byte(good), fullEnv)
	require.NoError(t, err)
	require.Equal(t, Reconcile{Skew: backfill.SkewDefault, ProbeEvery: backfill.ProbeEveryDefault, Lease: backfill.LeaseDefault}, c.Reconcile,
		"schedules and the probe are off by default")

	text := good + `appwrite: {project: p1, api_key: k1}
reconcile:
  incremental_every: 5m
  full_every: 24h
  skew: 2m
  webhook_ids: [wh1, wh2]
  probe_every: 30s
  lease: 10s
`
	c, err = Parse("config.yaml", []byte(text), fullEnv)
	require.NoError(t, err)
	require.Equal(t, Reconcile{IncrementalEvery: 5 * time.Minute, FullEvery: 24 * time.Hour, Skew: 2 * time.Minute,
		WebhookIDs: []string{"wh1", "wh2"}, ProbeEvery: 30 * time.Second, Lease: 10 * time.Second}, c.Reconcile)
}

func TestQuarantineBounds(t *testing.T) {
	c, err := Parse("config.yaml", []byte(good), fullEnv)
	require.NoError(t, err)
	require.Equal(t, Quarantine{Retention: 30 * 24 * time.Hour, MaxRows: 100_000}, c.Quarantine)
	c, err = Parse("config.yaml", []byte(good+"quarantine: {retention: 72h, max_rows: 500}\n"), fullEnv)
	require.NoError(t, err)
	require.Equal(t, Quarantine{Retention: 72 * time.Hour, MaxRows: 500}, c.Quarantine)
	c, err = Parse("config.yaml", []byte(good+"quarantine: {retention: 0s, max_rows: 0}\n"), fullEnv)
	require.NoError(t, err)
	require.Equal(t, Quarantine{}, c.Quarantine, "0 turns each off")
	msg := parseErr(t, good+"quarantine: {retention: 1 week, max_rows: -1, max_row: 5}\n", fullEnv)
	require.Contains(t, msg, "quarantine.retention: must be a non-negative duration")
	require.Contains(t, msg, "quarantine.max_rows: must not be negative")
	require.Contains(t, msg, `unknown key "max_row"`)
}

func TestReconcileErrors(t *testing.T) {
	msg := parseErr(t, good+"reconcile:\n  incremental_every: 5m\n  fulll_every: 1h\n", fullEnv)
	require.Contains(t, msg, `config.yaml:17: reconcile.incremental_every: reconcile needs the Appwrite API`)
	require.Contains(t, msg, `reconcile.fulll_every: unknown key "fulll_every"; did you mean "full_every"?`)

	msg = parseErr(t, good+"appwrite: {project: p, api_key: k}\nreconcile:\n  probe_every: 0s\n  skew: -1m\n  webhook_ids: [\"\"]\n", fullEnv)
	require.Contains(t, msg, "reconcile.probe_every: must be positive")
	require.Contains(t, msg, "reconcile.skew: must be a non-negative duration")
	require.Contains(t, msg, "reconcile.webhook_ids[0]: empty webhook id")
}

func TestDeliveryLingerAndParallelPages(t *testing.T) {
	c, err := Parse("config.yaml", []byte(good), fullEnv)
	require.NoError(t, err)
	require.Equal(t, ledger.LingerDefault, c.Delivery.Linger)
	require.Equal(t, backfill.ParallelPagesDefault, c.Appwrite.ParallelPages)

	c, err = Parse("config.yaml", []byte(good+"delivery: {linger: 0s}\nappwrite: {parallel_pages: 1}\n"), fullEnv)
	require.NoError(t, err)
	require.Zero(t, c.Delivery.Linger, "0 turns lingering off")
	require.Equal(t, 1, c.Appwrite.ParallelPages)

	msg := parseErr(t, good+"delivery:\n  linger: -5ms\nappwrite:\n  parallel_pages: 65\n", fullEnv)
	require.Contains(t, msg, `config.yaml:17: delivery.linger: must be a non-negative duration`)
	require.Contains(t, msg, `config.yaml:19: appwrite.parallel_pages: too many parallel requests (got "65"); use 1 to 64`)
	msg = parseErr(t, good+"appwrite:\n  parallel_pages: 0\n", fullEnv)
	require.Contains(t, msg, `config.yaml:17: appwrite.parallel_pages: must be positive (got "0")`)
}

func TestMemoryLimitDefaultAndValues(t *testing.T) {
	c, err := Parse("config.yaml", []byte(good), fullEnv)
	require.NoError(t, err)
	require.Equal(t, int64(MemoryLimitDefault), c.MemoryLimit)
	require.Equal(t, int64(128<<20), c.MemoryLimit, "128MiB when the key is absent")

	for _, tc := range []struct {
		value string
		want  int64
	}{
		{"160MiB", 160 << 20},
		{"256MiB", 256 << 20},
		{"1GiB", 1 << 30},
		{"32768KiB", 32 << 20},
		{"16777216", 16 << 20},
		{"16777216B", 16 << 20},
		{`"200MiB"`, 200 << 20},
		{"0", 0},
		{"off", 0},
		{`"off"`, 0},
	} {
		t.Run(tc.value, func(t *testing.T) {
			c, err := Parse("config.yaml", []byte(good+"memory_limit: "+tc.value+"\n"), fullEnv)
			require.NoError(t, err)
			require.Equal(t, tc.want, c.MemoryLimit)
		})
	}

	lookup := env(map[string]string{"TOKEN": "0123456789abcdef-token", "SECRET": "s3cr3t-signing-key",
		"DATABASE_URL": "postgres://u:hunter2pw@localhost:5432/db", "MEM": "96MiB"})
	c, err = Parse("config.yaml", []byte(good+"memory_limit: ${MEM:-160MiB}\n"), lookup)
	require.NoError(t, err)
	require.Equal(t, int64(96<<20), c.MemoryLimit, "the value may come from the environment")
}

func TestMemoryLimitErrors(t *testing.T) {
	const fix = "write bytes or a whole number with a unit B, KiB, MiB or GiB, e.g. 160MiB; 0 or off turns the limit off"
	for _, tc := range []struct{ value, want string }{
		{"12XB", `config.yaml:16: memory_limit: unknown unit "XB" (got "12XB"); ` + fix},
		{"160mib", `config.yaml:16: memory_limit: unknown unit "mib" (got "160mib")`},
		{"2TiB", `config.yaml:16: memory_limit: unknown unit "TiB" (got "2TiB")`},
		{"-1", `config.yaml:16: memory_limit: must not be negative (got "-1"); ` + fix},
		{"-64MiB", `config.yaml:16: memory_limit: must not be negative (got "-64MiB")`},
		{"lots", `config.yaml:16: memory_limit: must be a memory size (got "lots"); ` + fix},
		{"MiB", `config.yaml:16: memory_limit: must be a memory size (got "MiB")`},
		{`""`, `config.yaml:16: memory_limit: must be a memory size`},
		{"[1, 2]", `config.yaml:16: memory_limit: must be a memory size (got "<list>")`},
		{"1.5GiB", `config.yaml:16: memory_limit: must be a whole number`},
		{`"160 MiB"`, `config.yaml:16: memory_limit: write the unit right after the number, without a space`},
		{"9000000000GiB", `config.yaml:16: memory_limit: too large (got "9000000000GiB")`},
		{"99999999999999999999", `config.yaml:16: memory_limit: too large`},
		{"160", `config.yaml:16: memory_limit: 160 bytes is below the smallest limit, 16MiB (got "160"); write at least 16MiB`},
		{"512KiB", `config.yaml:16: memory_limit: 512 KiB is below the smallest limit, 16MiB`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			require.Contains(t, parseErr(t, good+"memory_limit: "+tc.value+"\n", fullEnv), tc.want)
		})
	}

	msg := parseErr(t, good+"memory_limt: 160MiB\n", fullEnv)
	require.Contains(t, msg, `config.yaml:16: memory_limt: unknown key "memory_limt"; did you mean "memory_limit"?`)
}

func TestFormatMemoryLimit(t *testing.T) {
	for v, want := range map[int64]string{0: "off", 160 << 20: "160MiB", 1 << 30: "1GiB", 3 << 29: "1536MiB",
		512 << 10: "512KiB", 1000: "1000B"} {
		require.Equal(t, want, FormatMemoryLimit(v))
	}
}

func TestDrainDelayAndIntakeBudget(t *testing.T) {
	c, err := Parse("config.yaml", []byte(good), fullEnv)
	require.NoError(t, err)
	require.Equal(t, DrainDelayDefault, c.Server.DrainDelay)
	require.EqualValues(t, MemoryLimitDefault/4, c.Limits.BodyBudget, "a quarter of memory_limit")
	require.Equal(t, webhook.BodyWaitDefault, c.Limits.BodyWait)

	c, err = Parse("config.yaml", []byte(good+"server: {drain_delay: 0s}\nlimits: {body_budget_bytes: 10485760, body_wait: 2s}\nmemory_limit: 0\n"), fullEnv)
	require.NoError(t, err)
	require.Zero(t, c.Server.DrainDelay, "0 closes at once")
	require.EqualValues(t, 10<<20, c.Limits.BodyBudget)
	require.Equal(t, 2*time.Second, c.Limits.BodyWait)

	c, err = Parse("config.yaml", []byte(good+"memory_limit: 0\nlimits: {max_body_bytes: 52428800}\n"), fullEnv)
	require.NoError(t, err)
	require.EqualValues(t, 100<<20, c.Limits.BodyBudget, "without memory_limit 64 MiB, but never under two bodies of the largest size")

	msg := parseErr(t, good+"limits: {max_body_bytes: 1048576, body_budget_bytes: 1024}\n", fullEnv)
	require.Contains(t, msg, "config.yaml:16: limits.body_budget_bytes: smaller than limits.max_body_bytes")
	require.Contains(t, parseErr(t, good+"limits: {body_wait: 0s}\n", fullEnv), "limits.body_wait: must be positive")
	require.Contains(t, parseErr(t, good+"server: {drain_delay: soon}\n", fullEnv), "server.drain_delay")
}

// A syntax error is reported at its own line, not at the line where yaml/v3's enclosing
// construct began (yamlnode.YAMLSyntaxError has the cases).
func TestYAMLSyntaxErrorAtItsLine(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"listen: \":8080\"\nadmin: {listen: x\n", "listen: \":8080\"\n- admin\n"} {
		require.Contains(t, parseErr(t, src, fullEnv), "config.yaml:2: not valid YAML: ")
	}
}

// The spool is off unless state.spool_dir is set; a relative directory is the config file's;
// reenable_webhooks needs the API and the webhooks to act on.
func TestSpoolAndReenableKeys(t *testing.T) {
	c, err := Parse("/etc/sync/config.yaml", []byte(good), fullEnv)
	require.NoError(t, err)
	require.Empty(t, c.State.SpoolDir, "the spool is off by default")
	require.Equal(t, int64(spool.MaxBytesDefault), c.State.SpoolMaxBytes)
	require.False(t, c.Reconcile.ReenableWebhooks)

	text := strings.Replace(good, "state:\n", "state:\n  spool_dir: .data/spool\n  spool_max_bytes: 2097152\n", 1) +
		"appwrite: {project: p, api_key: k}\nreconcile: {webhook_ids: [wh1], reenable_webhooks: true}\n"
	c, err = Parse("/etc/sync/config.yaml", []byte(text), fullEnv)
	require.NoError(t, err)
	require.Equal(t, "/etc/sync/.data/spool", c.State.SpoolDir)
	require.Equal(t, int64(2<<20), c.State.SpoolMaxBytes)
	require.True(t, c.Reconcile.ReenableWebhooks)

	msg := parseErr(t, strings.Replace(good, "state:\n", "state:\n  spool_max_bytes: 1000\n", 1)+"reconcile: {reenable_webhooks: true}\n", fullEnv)
	require.Contains(t, msg, "state.spool_max_bytes: too small")
	require.Contains(t, msg, "reconcile.reenable_webhooks: reconcile needs the Appwrite API")
	require.Contains(t, msg, "reconcile.reenable_webhooks: reenable_webhooks acts on the webhooks of reconcile.webhook_ids")
}

// audit: defaults, and an events string that could never match is an error at its line with a
// fix; a negative retention and a table clashing with a mapped table too.
func TestAuditConfig(t *testing.T) {
	t.Parallel()
	c, err := Parse("config.yaml", []byte(good+"audit:\n  events: [\"users.*\", \"buckets.*.files.*\"]\n  retention: 2160h\n"), fullEnv)
	require.NoError(t, err)
	require.Equal(t, []string{"users.*", "buckets.*.files.*"}, c.Audit.Events)
	require.Equal(t, "audit_log", c.Audit.Table)
	require.Equal(t, 2160*time.Hour, c.Audit.Retention)

	msg := parseErr(t, good+"audit:\n  events:\n    - users.*\n    - users.a*\n  retention: -1h\n  table: posts\n", fullEnv)
	require.Contains(t, msg, "config.yaml:19: audit.events[1]")
	require.Contains(t, msg, `"*" is part of a segment`)
	require.Contains(t, msg, `"*" stands for one whole id`)
	require.Contains(t, msg, "audit.retention")
	require.Contains(t, msg, "non-negative duration")

	msg = parseErr(t, good+"audit:\n  events: [users.*]\n  table: posts\n", fullEnv)
	require.Contains(t, msg, "audit.table")
	require.Contains(t, msg, "is also the warehouse table of main/posts")
}
