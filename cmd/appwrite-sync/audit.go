package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/audit"
	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
	"github.com/appwrite-sync/appwrite-sync/internal/pgerr"
)

// auditLog is the audit log of a serve run (audit.events set): the recorder the webhook
// handler calls and the delivery into the warehouse.
type auditLog struct {
	a   *app
	rec *audit.Recorder
	del *audit.Deliverer
}

// newAuditLog builds the audit log, or returns nil when audit.events is empty.
func newAuditLog(a *app) (*auditLog, error) {
	c := a.cfg.Audit
	if len(c.Events) == 0 {
		return nil, nil
	}
	m, err := audit.NewMatcher(c.Events)
	if err != nil {
		return nil, err
	}
	del := audit.NewDeliverer(a.state, a.wh, audit.DelivererOptions{Schema: a.cfg.Warehouse.Schema, Table: c.Table,
		Retention: c.Retention, Metrics: a.metrics, Log: a.log.WithField("component", "audit")})
	rec := audit.NewRecorder(a.logPool, audit.RecorderOptions{Matcher: m, MaxBatch: a.cfg.State.GroupCommitMax,
		Metrics: a.metrics, Log: a.log.WithField("component", "audit"), Notify: del.Notify})
	return &auditLog{a: a, rec: rec, del: del}, nil
}

// auditor is the webhook handler's Auditor: nil (not a nil *auditLog) without an audit log.
func (l *auditLog) auditor() webhook.Auditor {
	if l == nil {
		return nil
	}
	return l
}

// Selects is the recorder's.
func (l *auditLog) Selects(events string) bool { return l.rec.Selects(events) }

// Audit records a delivery that is not a row change of a mapped table (or one whose change the
// state store refused and which is quarantined). When it cannot, the handler answers 503 and
// records nothing else of the delivery: a row change of a mapped table is then lost as any
// refused change is (Appwrite does not retry), so its table goes on the outage's repair list
// like theirs.
func (l *auditLog) Audit(ctx context.Context, header http.Header, body []byte, received time.Time) error {
	err := l.rec.Audit(ctx, header, body, received)
	if err != nil {
		if ch, derr := webhook.Decode(header.Get(webhook.HeaderEvents), body); derr == nil && l.a.mapped(ch.Key) {
			l.a.outage.Refuse(ch.Key, received, "audit_unavailable")
		}
	}
	return err
}

// Entry is the recorder's.
func (l *auditLog) Entry(header http.Header, body []byte, received time.Time) *connector.AuditEntry {
	return l.rec.Entry(header, body, received)
}

// notify wakes the delivery (the ledger's recorder recorded entries with row changes).
func (l *auditLog) notify() {
	if l != nil {
		l.del.Notify()
	}
}

// run delivers the log to the warehouse and applies retention until ctx ends.
func (l *auditLog) run(ctx context.Context) {
	if l != nil {
		l.del.Run(ctx)
	}
}

// close stops the recorder (after the listeners closed: no request audits any more).
func (l *auditLog) close() {
	if l != nil {
		l.rec.Close()
	}
}

// auditCommand is `appwrite-sync audit verify`.
func auditCommand(ctx context.Context, load loader, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Work with the audit log (audit.events)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(command("verify",
		"Recompute the audit log's hash chain in the warehouse; exit 0 with the entry count and head hash, 1 naming the first entry that does not match",
		load.then(func(cfg *config.Config) error { return verifyAudit(ctx, cfg, stdout) })))
	return cmd
}

func verifyAudit(ctx context.Context, cfg *config.Config, stdout io.Writer) error {
	pool, err := ledger.OpenPool(ctx, cfg.Warehouse.DatabaseURL, 2)
	if err != nil {
		return fmt.Errorf("warehouse: %w", err)
	}
	defer pool.Close()
	name := cfg.Warehouse.Schema + "." + cfg.Audit.Table
	rep, err := audit.Verify(ctx, pool, cfg.Warehouse.Schema, cfg.Audit.Table)
	var be *audit.BrokenError
	if errors.As(err, &be) {
		return &exitError{exitFailure, fmt.Errorf("audit log %s is NOT intact: %w (%d entries before it verified)", name, err, rep.Entries)}
	}
	if pgerr.IsUndefinedTable(err) {
		return fmt.Errorf("audit log %s does not exist: serve creates it once audit.events is set (check warehouse.schema and audit.table)", name)
	}
	if err != nil {
		return err
	}
	if rep.Entries == 0 {
		fmt.Fprintf(stdout, "audit log %s is empty: nothing to verify\n", name)
		return nil
	}
	if rep.First > 1 {
		fmt.Fprintf(stdout, "entries before seq %d are not in the table (audit.retention removed them): the chain is checked from seq %d's prev_hash %s\n",
			rep.First, rep.First, rep.Start)
	}
	fmt.Fprintf(stdout, "audit log %s intact: %d entries (seq %d to %d), head hash %s\n", name, rep.Entries, rep.First, rep.Last, rep.Head)
	return nil
}

// auditPlan is validate's paragraph on the audit log: "" while audit.events is empty.
func auditPlan(cfg *config.Config) string {
	if len(cfg.Audit.Events) == 0 {
		return ""
	}
	keep := "every entry kept"
	if cfg.Audit.Retention > 0 {
		keep = "entries older than " + cfg.Audit.Retention.String() + " removed"
	}
	return fmt.Sprintf("\naudit log: %s.%s (%s; check it with `appwrite-sync audit verify`)\n"+
		"  kept: verified webhooks whose events header holds one of: %s\n"+
		"  (subscribe the Appwrite webhook to these events too)\n",
		pgx.Identifier{cfg.Warehouse.Schema}.Sanitize(), pgx.Identifier{cfg.Audit.Table}.Sanitize(), keep, strings.Join(cfg.Audit.Events, ", "))
}
