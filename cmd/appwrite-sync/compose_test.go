package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
)

// No Docker engine runs here, so `docker compose up` itself is not exercised. This checks
// what can be checked without one: the stack's shape (pinned images, healthchecks, named
// volumes, loopback-only admin and Meilisearch ports), and that config.yaml, unchanged,
// validates with exactly the environment compose gives the appwrite-sync container.
func TestComposeStackAndConfigAgree(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	require.NoError(t, err)
	var stack struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       string            `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
			DependsOn map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &stack))
	require.ElementsMatch(t, []string{"postgres", "meilisearch", "appwrite-sync"}, keys(stack.Services))
	for name, s := range stack.Services {
		require.NotEmpty(t, s.Healthcheck.Test, "%s needs a healthcheck", name)
		if s.Image != "" {
			require.Regexp(t, `:[v]?\d+(\.\d+)+`, s.Image, "%s: pin the image version", name)
		}
		for _, v := range s.Volumes {
			vol := strings.SplitN(v, ":", 2)[0]
			require.Contains(t, stack.Volumes, vol, "%s: volume %s must be a named volume", name, vol)
		}
	}
	require.True(t, strings.HasPrefix(stack.Services["meilisearch"].Image, "getmeili/meilisearch:"), "the official image")
	require.NotEmpty(t, stack.Services["meilisearch"].Environment["MEILI_MASTER_KEY"], "master key set")
	require.Equal(t, []string{"127.0.0.1:7700:7700"}, stack.Services["meilisearch"].Ports, "Meilisearch only on loopback")

	app := stack.Services["appwrite-sync"]
	require.Equal(t, ".", app.Build)
	require.Equal(t, "service_healthy", app.DependsOn["postgres"].Condition)
	require.Equal(t, "service_healthy", app.DependsOn["meilisearch"].Condition)
	require.Contains(t, app.Ports, "127.0.0.1:9090:9090", "admin port published on loopback only")
	require.Equal(t, "/usr/local/bin/appwrite-sync", app.Healthcheck.Test[1], "the binary's path in the Dockerfile")

	// The container's environment as compose would set it, with the user's required secrets.
	user := map[string]string{"APPWRITE_WEBHOOK_SECRET": "s3cret-from-appwrite", "APPWRITE_SYNC_ADMIN_TOKEN": strings.Repeat("t", 48)}
	ref := regexp.MustCompile(`\$\{(\w+)(?::([-?])([^}]*))?\}`)
	env := map[string]string{}
	for k, v := range app.Environment {
		env[k] = ref.ReplaceAllStringFunc(v, func(m string) string {
			p := ref.FindStringSubmatch(m)
			if u, ok := user[p[1]]; ok {
				return u
			}
			require.NotEqual(t, "?", p[2], "compose requires %s", p[1])
			return p[3]
		})
	}
	cfg, err := config.LoadWith("../../config.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err, "config.yaml must work unchanged with the compose environment")
	require.Equal(t, "0.0.0.0:9090", cfg.Admin.Listen)
	require.True(t, strings.HasSuffix(cfg.Listen, ":8080"), "the published webhook port")
	require.Contains(t, cfg.State.DatabaseURL, "@postgres:5432/")
	require.Equal(t, "http://meilisearch:7700", cfg.Meili.URL)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
