package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every form of connection string pgx reads loses its passwords, and only them; what cannot
// be read is not shown.
func TestRedactEveryDSNForm(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, dsn, want string
		secrets         []string
	}{
		{"url userinfo", "postgres://app:pw-Url1@db.internal:5432/sync?sslmode=require",
			"postgres://app:xxxxx@db.internal:5432/sync?sslmode=require", []string{"pw-Url1"}},
		{"postgresql scheme", "postgresql://app:pw-Url2@db/sync", "postgresql://app:xxxxx@db/sync", []string{"pw-Url2"}},
		{"url escaped password", "postgres://app:p%40ss%2Fw-Url3@db/sync", "postgres://app:xxxxx@db/sync", []string{"p@ss/w-Url3"}},
		{"url password parameter", "postgres://app@db/sync?sslmode=disable&password=pw-Query1",
			"postgres://app@db/sync?password=xxxxx&sslmode=disable", []string{"pw-Query1"}},
		{"url sslpassword parameter", "postgres://db/sync?sslpassword=pw-Query2", "postgres://db/sync?sslpassword=xxxxx", []string{"pw-Query2"}},
		{"url without password", "postgres://app@db:5432/sync", "postgres://app@db:5432/sync", nil},
		{"url with several hosts", "postgres://app:pw-Multi@h1:5432,h2:5432/sync",
			"postgres://app:xxxxx@h1:5432,h2:5432/sync", []string{"pw-Multi"}},
		{"url with a raw slash in the password", "postgres://app:pw/Raw?x@db/sync", "postgres://app@" + dsnHidden, nil},
		{"keyword value", "host=db user=app password=pw-Kv1 dbname=sync",
			"host=db user=app password=xxxxx dbname=sync", []string{"pw-Kv1"}},
		{"keyword value quoted", "host=db password='pw Kv2 with spaces' dbname=sync",
			"host=db password=xxxxx dbname=sync", []string{"pw Kv2 with spaces"}},
		{"keyword value escaped quote", `host=db password='pw\'Kv3 x' dbname=sync`,
			"host=db password=xxxxx dbname=sync", []string{"pw'Kv3 x"}},
		{"keyword value escaped space", `host=db password=pw\ Kv4 dbname=sync`,
			"host=db password=xxxxx dbname=sync", []string{"pw Kv4"}},
		{"keyword value spaces around =", "host = db password = pw-Kv5   sslpassword='pw-Kv6'",
			"host=db password=xxxxx sslpassword=xxxxx", []string{"pw-Kv5", "pw-Kv6"}},
		{"keyword value upper case key", "PASSWORD=pw-Kv7 host=db", "PASSWORD=xxxxx host=db", []string{"pw-Kv7"}},
		{"keyword value unterminated quote", "host=db password='pw-Kv8 dbname=sync", "host=db password=" + dsnHidden, nil},
		{"keyword value garbage after", "host=db nonsense pw-Kv9", "host=db " + dsnHidden, nil},
		{"scheme typo", "postgres:/app:pw-Typo1@db/sync?password=pw-Typo2", dsnHidden, nil},
		{"not a connection string", "pw-Plain1", dsnHidden, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := Redact(c.dsn)
			require.Equal(t, c.want, got)
			require.NotContains(t, strings.ToLower(got), "pw-")
			require.NotContains(t, got, "Raw")
			require.ElementsMatch(t, c.secrets, dsnPasswords(c.dsn))
		})
	}
}

// A database_url that fails validation is shown without its password.
func TestDSNErrorsDoNotShowThePassword(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"postgress://app:pw-Bad1@db/sync", "pw-Bad2", "postgres://app:pw-Bad3@db:port/sync"} {
		text := strings.Replace(good, `"${DATABASE_URL}"`, `"`+dsn+`"`, 1)
		text += "warehouse:\n  database_url: \"" + strings.Replace(dsn, "Bad", "Wh", 1) + "\"\n"
		msg := parseErr(t, text, fullEnv)
		require.Contains(t, msg, "state.database_url:")
		require.Contains(t, msg, "warehouse.database_url:")
		require.NotContains(t, msg, "pw-", dsn)
	}
}

// Secrets knows the passwords of keyword=value connection strings too.
func TestSecretsOfKeywordValueDSN(t *testing.T) {
	t.Parallel()
	text := strings.Replace(good, `"${DATABASE_URL}"`, `"host=db password='s3cret pw' dbname=x"`, 1)
	c, err := Parse("config.yaml", []byte(text), fullEnv)
	require.NoError(t, err)
	require.Contains(t, c.Secrets(), "s3cret pw")
}

// A secret written in the file itself (not taken from the environment) is not shown either
// when it is wrong.
func TestSecretWrittenInTheFileIsNotShown(t *testing.T) {
	t.Parallel()
	text := strings.Replace(good, `"${TOKEN}"`, `"tok-Short1"`, 1)
	msg := parseErr(t, text, fullEnv)
	require.Contains(t, msg, "admin.token is too short")
	require.NotContains(t, msg, "tok-Short1")
}
