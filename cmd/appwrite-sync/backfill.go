package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
)

// jobView is what GET /admin/backfill/{id} answers.
type jobView struct {
	ID          string  `json:"id"`
	Table       string  `json:"table"`
	Mode        string  `json:"mode"`
	State       string  `json:"state"`
	RowsRead    int64   `json:"rows_read"`
	RowsChanged int64   `json:"rows_changed"`
	RowsDeleted int64   `json:"rows_deleted"`
	RatePerS    float64 `json:"rate_per_s"`
	ETAs        float64 `json:"eta_s"`
	Total       int64   `json:"total"`
	// RowsTotal is the rows to read, exact or (RowsTotalExact false) estimated; 0: unknown.
	RowsTotal      int64  `json:"rows_total"`
	RowsTotalExact bool   `json:"rows_total_exact"`
	Error          string `json:"error"`
}

func (j jobView) done() bool {
	return j.State == "succeeded" || j.State == "failed" || j.State == "canceled"
}

// adminBase turns admin.listen into a URL this machine can call (https when admin.tls is set).
func adminBase(listen string, tls bool) string {
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return scheme + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return scheme + net.JoinHostPort(host, port)
}

func backfillCommand(ctx context.Context, load loader, stdout io.Writer) *cobra.Command {
	var table, mode, adminURL string
	var follow, allowMassDelete bool
	var poll time.Duration
	cmd := command("backfill --table database/table [--mode full|incremental] [--allow-mass-delete] [--follow]",
		"Start a backfill job through the admin API; --follow shows live progress",
		load.then(func(cfg *config.Config) error {
			if table == "" {
				return &exitError{exitBadInput, errors.New("--table is required, e.g. --table main/posts")}
			}
			if mode != "full" && mode != "incremental" {
				return &exitError{exitBadInput, fmt.Errorf("--mode %q: use full or incremental", mode)}
			}
			if allowMassDelete && mode != "full" {
				return &exitError{exitBadInput, errors.New("--allow-mass-delete applies to --mode full only")}
			}
			c, err := newAdminClient(cfg, adminURL, "backfill")
			if err != nil {
				return err
			}
			base := c.base
			body, _ := json.Marshal(map[string]any{"table": table, "mode": mode, "allow_mass_delete": allowMassDelete})
			var started struct {
				ID    string `json:"id"`
				Error string `json:"error"`
			}
			status, err := c.do(ctx, http.MethodPost, "/admin/backfill", body, &started)
			if err != nil {
				return fmt.Errorf("calling the admin API at %s (is `appwrite-sync serve` running?): %w", base, err)
			}
			if status != http.StatusAccepted {
				return fmt.Errorf("admin API answered %d: %s", status, started.Error)
			}
			fmt.Fprintf(stdout, "backfill job %s started (%s, %s)\n", started.ID, table, mode)
			if !follow {
				return nil
			}
			return followJob(ctx, c, started.ID, poll, stdout)
		}))
	cmd.Flags().StringVar(&table, "table", "", "table to backfill, as database/table")
	cmd.Flags().StringVar(&mode, "mode", "full", "full (scan all rows, delete rows gone from the source) or incremental (rows changed since the last watermark)")
	cmd.Flags().BoolVar(&allowMassDelete, "allow-mass-delete", false, "let a full job delete more than half of the table's rows (it refuses otherwise: a key that cannot see the rows would look like every row is gone)")
	cmd.Flags().BoolVar(&follow, "follow", false, "show live progress until the job ends; exit code reflects the outcome")
	cmd.Flags().StringVar(&adminURL, "admin-url", "", "admin API base URL (default: from admin.listen)")
	cmd.Flags().DurationVar(&poll, "poll", 500*time.Millisecond, "progress refresh interval")
	return cmd
}

type adminClient struct {
	base, token string
	http        *http.Client
}

// newAdminClient is how a command (named in errors) reaches the admin API of a running serve:
// at adminURL, or admin.listen, with admin.token, over TLS when admin.tls is set.
func newAdminClient(cfg *config.Config, adminURL, command string) (adminClient, error) {
	if cfg.Admin.Listen == "" && adminURL == "" {
		return adminClient{}, &exitError{exitBadInput, fmt.Errorf("admin.listen is empty: the %s command talks to the admin API of a running serve", command)}
	}
	base := adminURL
	if base == "" {
		base = adminBase(cfg.Admin.Listen, cfg.Admin.TLS.Enabled())
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if cfg.Admin.TLS.Enabled() {
		// Trust exactly the configured certificate: the call goes to this deployment's admin
		// listener, usually by an address the certificate does not name.
		tc, err := pinnedTLS(cfg.Admin.TLS.CertFile)
		if err != nil {
			return adminClient{}, fmt.Errorf("admin.tls.cert_file: %w", err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		hc.Transport = tr
	}
	return adminClient{base: base, token: cfg.Admin.Token, http: hc}, nil
}

func (c adminClient) do(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if out != nil && len(b) > 0 {
		_ = json.Unmarshal(b, out)
	}
	return resp.StatusCode, nil
}

// followJob polls the job; on a terminal it draws a progress bar, elsewhere it logs a line
// every few seconds. Returns an error (exit 1) unless the job succeeded.
func followJob(ctx context.Context, c adminClient, id string, poll time.Duration, out io.Writer) error {
	tty := isTerminal(out)
	var bar *jobBar
	lastLog := time.Time{}
	for {
		var j jobView
		status, err := c.do(ctx, http.MethodGet, "/admin/backfill/"+id, nil, &j)
		if err != nil {
			return fmt.Errorf("polling job %s: %w", id, err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("polling job %s: admin API answered %d", id, status)
		}
		if tty {
			if bar == nil {
				bar = newJobBar(out)
			}
			bar.update(j)
		} else if time.Since(lastLog) >= 2*time.Second || j.done() {
			lastLog = time.Now()
			eta := ""
			if j.ETAs > 0 {
				eta = fmt.Sprintf(" eta=%.0fs", j.ETAs)
			}
			fmt.Fprintf(out, "backfill %s %s: state=%s read=%d changed=%d deleted=%d rate=%.0f/s%s\n",
				id, j.Table, j.State, j.RowsRead, j.RowsChanged, j.RowsDeleted, j.RatePerS, eta)
		}
		if j.done() {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintf(out, "backfill %s %s: %s, read=%d changed=%d deleted=%d\n", id, j.Table, j.State, j.RowsRead, j.RowsChanged, j.RowsDeleted)
			}
			if j.State != "succeeded" {
				return fmt.Errorf("backfill %s %s: %s", id, j.State, j.Error)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}
