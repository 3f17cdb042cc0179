package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
)

// No Docker engine runs here, so `docker compose up` itself is not exercised. This checks
// what can be checked without one: the stack's shape (pinned images, healthchecks, named
// volumes, loopback-only admin and Meilisearch ports), its hardening (non-root users, no
// capabilities, read-only root filesystems, no-new-privileges, required secrets), the grace
// period of the drain on shutdown, and that config.yaml, unchanged, validates with exactly the
// environment compose gives the appwrite-sync container.
func TestComposeStackAndConfigAgree(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docker-compose.yml")
	require.NoError(t, err)
	var stack struct {
		Services map[string]struct {
			Image           string            `yaml:"image"`
			User            string            `yaml:"user"`
			ReadOnly        bool              `yaml:"read_only"`
			CapDrop         []string          `yaml:"cap_drop"`
			CapAdd          []string          `yaml:"cap_add"`
			SecurityOpt     []string          `yaml:"security_opt"`
			Privileged      bool              `yaml:"privileged"`
			NetworkMode     string            `yaml:"network_mode"`
			StopGracePeriod string            `yaml:"stop_grace_period"`
			Build           string            `yaml:"build"`
			Environment     map[string]string `yaml:"environment"`
			Volumes         []string          `yaml:"volumes"`
			Ports           []string          `yaml:"ports"`
			Healthcheck     struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
			DependsOn map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &stack))
	require.ElementsMatch(t, []string{"postgres", "meilisearch-volume", "meilisearch", "appwrite-sync"}, keys(stack.Services))
	oneShot := map[string]bool{}
	for _, s := range stack.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == "service_completed_successfully" {
				oneShot[dep] = true
			}
		}
	}
	require.Equal(t, map[string]bool{"meilisearch-volume": true}, oneShot)
	for name, s := range stack.Services {
		if !oneShot[name] {
			require.NotEmpty(t, s.Healthcheck.Test, "%s needs a healthcheck", name)
		}
		require.Equal(t, []string{"ALL"}, s.CapDrop, "%s: drop every capability", name)
		require.True(t, s.ReadOnly, "%s: read-only root filesystem (tmpfs where it must write)", name)
		require.Contains(t, s.SecurityOpt, "no-new-privileges:true", name)
		require.False(t, s.Privileged, name)
		for _, o := range s.SecurityOpt {
			require.NotContains(t, o, "unconfined", "%s: keep Docker's default seccomp profile", name)
		}
		if oneShot[name] {
			// Chowns the Meilisearch volume once: root, but with CAP_CHOWN only and no network.
			require.Equal(t, []string{"CHOWN"}, s.CapAdd, name)
			require.Equal(t, "none", s.NetworkMode, name)
		} else {
			require.Empty(t, s.CapAdd, name)
			uid := strings.SplitN(s.User, ":", 2)[0]
			require.Regexp(t, `^[1-9][0-9]*$`, uid, "%s: run as a numeric non-root user", name)
		}
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
	require.Contains(t, app.Healthcheck.Test, "http://127.0.0.1:8080/readyz", "healthy means ready")
	dockerfile, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	require.Contains(t, string(dockerfile), "\nUSER "+app.User+"\n", "the image's user, numeric")
	grace, err := time.ParseDuration(app.StopGracePeriod)
	require.NoError(t, err)
	require.Equal(t, 45*time.Second, grace)
	require.Greater(t, grace, config.DrainDelayDefault+config.ShutdownTimeoutDefault, "covers drain + shutdown + one delivery batch")

	// The container's environment as compose would set it, with the user's required secrets.
	user := map[string]string{"APPWRITE_WEBHOOK_SECRET": "s3cret-from-appwrite", "APPWRITE_SYNC_ADMIN_TOKEN": strings.Repeat("t", 48),
		"POSTGRES_PASSWORD": "pg-password", "MEILI_MASTER_KEY": "meili-master-key-0123"}
	ref := regexp.MustCompile(`\$\{(\w+)(?::([-?])([^}]*))?\}`)
	// No secret has a default: compose refuses to start without each.
	for _, m := range ref.FindAllStringSubmatch(string(raw), -1) {
		if secretName.MatchString(m[1]) && m[2] == "-" {
			require.Empty(t, m[3], "%s must not default to a value: use ${%s:?...}", m[1], m[1])
		}
	}
	for _, name := range []string{"POSTGRES_PASSWORD", "MEILI_MASTER_KEY", "APPWRITE_WEBHOOK_SECRET", "APPWRITE_SYNC_ADMIN_TOKEN"} {
		require.Contains(t, string(raw), "${"+name+":?", "%s is required", name)
	}
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

// secretName matches the environment variables that hold credentials.
var secretName = regexp.MustCompile(`PASSWORD|SECRET|TOKEN|_KEY$`)

// The Kubernetes example: hardened container, probes and grace period matching the drain on
// shutdown, and secrets only referenced from a Secret the operator creates.
func TestKubernetesSidecarManifest(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../deploy/kubernetes/sidecar.yaml")
	require.NoError(t, err)
	type probe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
		PeriodSeconds    int `yaml:"periodSeconds"`
		FailureThreshold int `yaml:"failureThreshold"`
	}
	type seccomp struct {
		Type string `yaml:"type"`
	}
	var deployment struct {
		Spec struct {
			Template struct {
				Spec struct {
					SecurityContext struct {
						RunAsNonRoot   bool    `yaml:"runAsNonRoot"`
						SeccompProfile seccomp `yaml:"seccompProfile"`
					} `yaml:"securityContext"`
					TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
					Containers                    []struct {
						Name string `yaml:"name"`
						Env  []struct {
							Name      string         `yaml:"name"`
							Value     *string        `yaml:"value"`
							ValueFrom map[string]any `yaml:"valueFrom"`
						} `yaml:"env"`
						EnvFrom         []any `yaml:"envFrom"`
						ReadinessProbe  probe `yaml:"readinessProbe"`
						LivenessProbe   probe `yaml:"livenessProbe"`
						SecurityContext struct {
							RunAsNonRoot             bool    `yaml:"runAsNonRoot"`
							RunAsUser                int     `yaml:"runAsUser"`
							ReadOnlyRootFilesystem   bool    `yaml:"readOnlyRootFilesystem"`
							AllowPrivilegeEscalation *bool   `yaml:"allowPrivilegeEscalation"`
							Privileged               bool    `yaml:"privileged"`
							SeccompProfile           seccomp `yaml:"seccompProfile"`
							Capabilities             struct {
								Drop []string `yaml:"drop"`
								Add  []string `yaml:"add"`
							} `yaml:"capabilities"`
						} `yaml:"securityContext"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	kinds := map[string]int{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		var head struct {
			Kind string `yaml:"kind"`
		}
		require.NoError(t, doc.Decode(&head))
		kinds[head.Kind]++
		if head.Kind == "Deployment" {
			require.NoError(t, doc.Decode(&deployment))
		}
	}
	require.Equal(t, map[string]int{"Deployment": 1, "Service": 1}, kinds, "no Secret with literal values: the operator creates it")

	pod := deployment.Spec.Template.Spec
	require.True(t, pod.SecurityContext.RunAsNonRoot)
	require.Equal(t, "RuntimeDefault", pod.SecurityContext.SeccompProfile.Type)
	grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
	require.Equal(t, 45*time.Second, grace)
	require.Greater(t, grace, config.DrainDelayDefault+config.ShutdownTimeoutDefault, "covers drain + shutdown + one delivery batch")

	var found bool
	for _, c := range pod.Containers {
		if c.Name != "appwrite-sync" {
			continue
		}
		found = true
		require.Empty(t, c.EnvFrom)
		for _, e := range c.Env {
			if secretName.MatchString(e.Name) || e.Name == "DATABASE_URL" {
				require.Nil(t, e.Value, "%s: no literal, a secretKeyRef", e.Name)
				require.Contains(t, e.ValueFrom, "secretKeyRef", e.Name)
			}
		}
		r := c.ReadinessProbe
		require.Equal(t, "/readyz", r.HTTPGet.Path)
		require.Equal(t, 1, r.PeriodSeconds)
		require.Equal(t, 2, r.FailureThreshold)
		// The load balancer must see the pod unready before the listener closes.
		require.GreaterOrEqual(t, config.DrainDelayDefault, time.Duration(r.PeriodSeconds*r.FailureThreshold)*time.Second+time.Second)
		require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
		sc := c.SecurityContext
		require.True(t, sc.RunAsNonRoot)
		require.Equal(t, 65532, sc.RunAsUser, "the Dockerfile's user")
		require.True(t, sc.ReadOnlyRootFilesystem)
		require.NotNil(t, sc.AllowPrivilegeEscalation)
		require.False(t, *sc.AllowPrivilegeEscalation)
		require.False(t, sc.Privileged)
		require.Equal(t, []string{"ALL"}, sc.Capabilities.Drop)
		require.Empty(t, sc.Capabilities.Add)
		require.Equal(t, "RuntimeDefault", sc.SeccompProfile.Type)
	}
	require.True(t, found, "the appwrite-sync container")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
