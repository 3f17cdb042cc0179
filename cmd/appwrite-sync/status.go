package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
)

// statusView is what `appwrite-sync status` shows: GET /admin/status with the active backfill
// jobs of GET /admin/backfill. It is also the --json output.
type statusView struct {
	Sinks       map[string]sinkView  `json:"sinks"`
	Quarantined int64                `json:"quarantined"`
	Tables      map[string]tableView `json:"tables"`
	// Jobs are the queued and running backfill jobs; null when backfill is not configured.
	Jobs []jobView `json:"jobs"`
	// Fanout is the relationship fan-out; absent when no table declares a relationship.
	Fanout *fanoutView `json:"fanout,omitempty"`
	// History and Audit are the row history's and the audit log's delivery backlogs; absent
	// when no table keeps a history, or without audit.events.
	History *backlogView `json:"history,omitempty"`
	Audit   *backlogView `json:"audit,omitempty"`
}

type sinkView struct {
	State      string    `json:"state,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	Pending    int64     `json:"pending"`
	LagSeconds float64   `json:"lag_seconds"`
	DeadLetter int64     `json:"dead_letter"`
	// LastError is why the sink is paused or retrying (the engine's reason); empty while it
	// delivers.
	LastError string `json:"last_error,omitempty"`
}

type tableView struct {
	Rows       int64 `json:"rows"`
	Tombstones int64 `json:"tombstones"`
}

func statusCommand(ctx context.Context, load loader, stdout io.Writer) *cobra.Command {
	var asJSON bool
	var adminURL string
	cmd := command("status [--json]",
		"Show sinks (pending, lag, dead letters, last error), quarantine and running backfill jobs of a running serve",
		load.then(func(cfg *config.Config) error {
			c, err := newAdminClient(cfg, adminURL, "status")
			if err != nil {
				return err
			}
			v, err := fetchStatus(ctx, c)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			writeStatus(stdout, v)
			return nil
		}))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().StringVar(&adminURL, "admin-url", "", "admin API base URL (default: from admin.listen)")
	return cmd
}

// fetchStatus reads the status and the backfill jobs from the admin API.
func fetchStatus(ctx context.Context, c adminClient) (statusView, error) {
	var raw struct {
		Sinks map[string]struct {
			sinkView
			Reason string `json:"reason"`
		} `json:"sinks"`
		Quarantined int64                `json:"quarantined"`
		Tables      map[string]tableView `json:"tables"`
		Fanout      *fanoutView          `json:"fanout"`
		History     *backlogView         `json:"history"`
		Audit       *backlogView         `json:"audit"`
		Error       string               `json:"error"`
	}
	status, err := c.do(ctx, http.MethodGet, "/admin/status", nil, &raw)
	if err != nil {
		return statusView{}, fmt.Errorf("calling the admin API at %s (is `appwrite-sync serve` running?): %w", c.base, err)
	}
	if status != http.StatusOK {
		return statusView{}, fmt.Errorf("admin API answered %d to GET /admin/status: %s", status, raw.Error)
	}
	v := statusView{Sinks: map[string]sinkView{}, Quarantined: raw.Quarantined, Tables: raw.Tables, Fanout: raw.Fanout,
		History: raw.History, Audit: raw.Audit}
	for name, s := range raw.Sinks {
		s.sinkView.LastError = s.Reason
		v.Sinks[name] = s.sinkView
	}
	var jobs struct {
		Jobs []jobView `json:"jobs"`
	}
	status, err = c.do(ctx, http.MethodGet, "/admin/backfill?limit=1000", nil, &jobs)
	if err != nil {
		return statusView{}, fmt.Errorf("calling the admin API at %s: %w", c.base, err)
	}
	switch status {
	case http.StatusOK:
		v.Jobs = []jobView{}
		for _, j := range jobs.Jobs {
			if !j.done() {
				v.Jobs = append(v.Jobs, j)
			}
		}
	case http.StatusNotImplemented: // backfill not configured: no jobs to show
	default:
		return statusView{}, fmt.Errorf("admin API answered %d to GET /admin/backfill", status)
	}
	return v, nil
}

// writeStatus prints v as aligned tables.
func writeStatus(out io.Writer, v statusView) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tSTATE\tPENDING\tLAG\tDEAD LETTERS\tLAST ERROR")
	for _, name := range slices.Sorted(maps.Keys(v.Sinks)) {
		s := v.Sinks[name]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", name, orDash(s.State), s.Pending,
			time.Duration(s.LagSeconds*float64(time.Second)).Round(100*time.Millisecond), s.DeadLetter, orDash(oneLine(s.LastError)))
	}
	tw.Flush()
	fmt.Fprintf(out, "\nquarantined requests: %d", v.Quarantined)
	if v.Quarantined > 0 {
		fmt.Fprint(out, " (inspect: GET /admin/quarantine; replay: POST /admin/quarantine/replay)")
	}
	fmt.Fprintln(out)
	if v.Fanout != nil {
		fmt.Fprintf(out, "relationship fan-outs queued: %d\n", v.Fanout.Queued)
	}
	for _, l := range []struct {
		what string
		v    *backlogView
	}{{"row history versions", v.History}, {"audit log entries", v.Audit}} {
		if l.v != nil {
			fmt.Fprintf(out, "%s not yet in the warehouse: %d (oldest %s)\n", l.what, l.v.Pending,
				time.Duration(l.v.LagSeconds*float64(time.Second)).Round(100*time.Millisecond))
		}
	}
	if len(v.Tables) > 0 {
		fmt.Fprintln(out)
		fmt.Fprintln(tw, "TABLE\tROWS\tTOMBSTONES")
		for _, name := range slices.Sorted(maps.Keys(v.Tables)) {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", name, v.Tables[name].Rows, v.Tables[name].Tombstones)
		}
		tw.Flush()
	}
	fmt.Fprintln(out)
	switch {
	case v.Jobs == nil:
		fmt.Fprintln(out, "backfill jobs: backfill is not configured (appwrite.project, appwrite.api_key)")
	case len(v.Jobs) == 0:
		fmt.Fprintln(out, "backfill jobs: none running")
	default:
		fmt.Fprintln(tw, "JOB\tTABLE\tMODE\tSTATE\tREAD\tTOTAL\tRATE\tETA")
		for _, j := range v.Jobs {
			total, eta := "-", "-"
			if j.RowsTotal > 0 {
				total = fmt.Sprint(j.RowsTotal)
				if !j.RowsTotalExact {
					total = "~" + total
				}
			}
			if j.ETAs > 0 {
				eta = (time.Duration(j.ETAs) * time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%.0f/s\t%s\n", j.ID, j.Table, j.Mode, j.State, j.RowsRead, total, j.RatePerS, eta)
		}
		tw.Flush()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line and of a readable width.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}
