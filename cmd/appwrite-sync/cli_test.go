package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateExampleConfigPrintsPlan(t *testing.T) {
	t.Setenv("APPWRITE_SYNC_ADMIN_TOKEN", "0123456789abcdef-admin")
	t.Setenv("APPWRITE_WEBHOOK_SECRET", "whsec")
	t.Setenv("DATABASE_URL", "postgres://u:p@localhost:5432/db")
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"validate", "--config", "../../config.yaml"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Contains(t, out.String(), `CREATE TABLE IF NOT EXISTS "appwrite"."posts"`)
	require.Contains(t, out.String(), "index:")
}

func TestValidateBadConfigExits2WithLocation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(p, []byte("listen: \":8080\"\nwebhookz: []\n"), 0o600))
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"validate", "--config", p}, &out, &errb)
	require.Equal(t, 2, code)
	require.Contains(t, errb.String(), p+`:2: webhookz: unknown key "webhookz"; did you mean "webhooks"?`)
}

func TestUnknownCommandExits2(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 2, Run(context.Background(), []string{"bogus"}, &out, &errb))
	require.Equal(t, 0, Run(context.Background(), []string{"version"}, &out, &errb))
	require.Contains(t, out.String(), "appwrite-sync ")
}

func TestValidatePrintsTheAuditLog(t *testing.T) {
	t.Setenv("APPWRITE_SYNC_ADMIN_TOKEN", "0123456789abcdef-admin")
	t.Setenv("APPWRITE_WEBHOOK_SECRET", "whsec")
	t.Setenv("DATABASE_URL", "postgres://u:p@localhost:5432/db")
	example, err := os.ReadFile("../../config.yaml")
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "config.yaml")
	withAudit := string(example) + "\naudit:\n  events: [\"users.*\", \"buckets.*.files.*\"]\n  retention: 720h\n"
	require.NoError(t, os.WriteFile(p, []byte(withAudit), 0o600))
	var out, errb bytes.Buffer
	require.Equal(t, 0, Run(context.Background(), []string{"validate", "--config", p}, &out, &errb), errb.String())
	require.Contains(t, out.String(), `audit log: "appwrite"."audit_log" (entries older than 720h0m0s removed;`)
	require.Contains(t, out.String(), "holds one of: users.*, buckets.*.files.*\n")

	out.Reset()
	require.Equal(t, 0, Run(context.Background(), []string{"validate", "--config", "../../config.yaml"}, &out, &errb), errb.String())
	require.NotContains(t, out.String(), "audit log:")
}
