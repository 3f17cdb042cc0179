// Package metrics defines every Prometheus collector of appwrite-sync in one place, so the
// README's metrics reference can be checked against a single file. Names are prefixed
// appwrite_sync_. Components receive *Metrics; nothing is registered globally.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the collectors.
type Metrics struct {
	Registry *prometheus.Registry

	WebhookRequests *prometheus.CounterVec   // webhook, outcome
	RateLimited     *prometheus.CounterVec   // webhook: requests refused with 429 by limits.rate_per_source
	IntakeRefused   *prometheus.CounterVec   // webhook: requests refused with 503 for want of room in limits.body_budget_bytes
	Draining        prometheus.Gauge         // 1 from SIGTERM until the listener closes
	IngestLatency   *prometheus.HistogramVec // outcome
	Changes         *prometheus.CounterVec   // table, result: recorded|stale|duplicate
	Ties            *prometheus.CounterVec   // table
	BelowHorizon    *prometheus.CounterVec   // table
	GroupCommitSize prometheus.Histogram
	Pending         *prometheus.GaugeVec   // sink
	Lag             *prometheus.GaugeVec   // sink (seconds)
	Applied         *prometheus.CounterVec // sink
	Failed          *prometheus.CounterVec // sink, kind: retry|dead_letter|unavailable
	DeadLetter      *prometheus.GaugeVec   // sink
	Quarantine      prometheus.Gauge
	Quarantined     prometheus.Counter
	BatchSize       *prometheus.HistogramVec // sink
	ClaimLatency    *prometheus.HistogramVec // sink
	ApplyLatency    *prometheus.HistogramVec // sink
	SinkUp          *prometheus.GaugeVec     // sink: 1 healthy, 0 paused
	TombstonesSwept prometheus.Counter
	Reprojected     *prometheus.CounterVec // sink
	BackfillRows    *prometheus.CounterVec // table, result: read|changed|deleted
	BackfillJobs    *prometheus.CounterVec // mode, state
	WebhookEnabled  *prometheus.GaugeVec   // webhook id: 1 enabled, 0 disabled (Appwrite 1.9+ probe)
	WebhookAttempts *prometheus.GaugeVec   // webhook id

	// QuarantineDropped counts quarantined requests removed, replayed or not, by reason:
	// retention (older than quarantine.retention) or cap (beyond quarantine.max_rows).
	QuarantineDropped *prometheus.CounterVec
	// The state store outage spool and the repair of what was refused (issue 22).
	SpoolBytes       prometheus.Gauge       // bytes spooled and not yet drained
	SpoolRecords     prometheus.Gauge       // changes spooled and not yet drained
	SpoolOldestAge   prometheus.Gauge       // seconds
	SpoolAppended    prometheus.Counter     // changes answered 200 from the spool
	SpoolDrained     prometheus.Counter     // changes drained into the ledger
	Refused          *prometheus.CounterVec // reason: spool_off|spool_full|spool_unwritable|audit_unavailable
	RefusedTables    prometheus.Gauge       // tables with refused changes awaiting an automatic reconcile
	Repairs          prometheus.Counter     // reconcile jobs queued to repair refused changes
	WebhookReenabled *prometheus.CounterVec // webhook id
	// Row history (postgres.history, issue 19).
	HistoryKept      *prometheus.CounterVec // table: distinct versions appended to the state store's history
	HistoryDelivered *prometheus.CounterVec // table: versions written to <table>_history (redeliveries included)
	HistoryRemoved   *prometheus.CounterVec // table, store: state|warehouse: versions removed by the retention

	// The audit log (issue 19).
	AuditEntries   *prometheus.CounterVec // result: recorded|duplicate
	AuditDelivered prometheus.Counter     // entries copied to the warehouse table
	AuditKept      prometheus.Gauge       // entries in the warehouse table
	AuditRemoved   *prometheus.CounterVec // store: state|warehouse (audit.retention)

	FanoutQueue    prometheus.Gauge   // relationship fan-outs not finished
	FanoutRequeued prometheus.Counter // rows re-queued because a row they link to changed
}

// New creates and registers every collector on a fresh registry (plus Go and process
// collectors). Each collector is registered where it is created, so none can be left out.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{Registry: r}
	m.WebhookRequests = counterVec(r, "appwrite_sync_webhook_requests_total",
		"Webhook requests by webhook and outcome (recorded, audited, ignored, quarantined, unauthorized, too_large, unavailable, bad_request, not_found, rate_limited, busy).", "webhook", "outcome")
	m.RateLimited = counterVec(r, "appwrite_sync_webhook_rate_limited_total",
		"Webhook requests refused with 429 because their client IP was over limits.rate_per_source. Appwrite counts each as a failed delivery.", "webhook")
	m.IntakeRefused = counterVec(r, "appwrite_sync_webhook_intake_refused_total",
		"Webhook requests refused with 503 because no room for their body was free in limits.body_budget_bytes within limits.body_wait. Sources that delivered validly signed webhooks in the last hour use a reserved share.", "webhook")
	m.Draining = gauge(r, "appwrite_sync_draining",
		"1 while the service drains after SIGTERM/SIGINT (/readyz answers 503, webhooks still taken for server.drain_delay).")
	m.IngestLatency = histogramVec(r, "appwrite_sync_ingest_latency_seconds", []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		"Time from request start to answer, by outcome.", "outcome")
	m.Changes = counterVec(r, "appwrite_sync_changes_total",
		"Changes offered to the ledger by result: recorded (newer version), stale (older), duplicate (same version).", "table", "result")
	m.Ties = counterVec(r, "appwrite_sync_version_ties_total",
		"Different contents seen with the same $updatedAt and op; a version read from the REST API, else the content hash, broke the tie.", "table")
	m.BelowHorizon = counterVec(r, "appwrite_sync_changes_below_horizon_total",
		"Webhook upserts refused (answered stale) because the ledger does not hold the row and they are not newer than the delete tombstones swept from its table: replays of deleted rows, or rows written with an old $updatedAt.", "table")
	m.GroupCommitSize = histogram(r, "appwrite_sync_group_commit_changes", prometheus.ExponentialBuckets(1, 2, 11),
		"Changes per ledger transaction.")
	m.Pending = gaugeVec(r, "appwrite_sync_sink_pending_rows",
		"Rows whose newest version is not yet applied to the sink (excluding dead letters).", "sink")
	m.Lag = gaugeVec(r, "appwrite_sync_sink_lag_seconds",
		"Age of the oldest pending change of the sink.", "sink")
	m.Applied = counterVec(r, "appwrite_sync_sink_applied_total",
		"Rows applied to the sink.", "sink")
	m.Failed = counterVec(r, "appwrite_sync_sink_failed_total",
		"Failed applies by kind: retry (batch retried later), dead_letter (row parked), unavailable (sink paused).", "sink", "kind")
	m.DeadLetter = gaugeVec(r, "appwrite_sync_dead_letter_rows",
		"Dead-lettered rows per sink.", "sink")
	m.Quarantine = gauge(r, "appwrite_sync_quarantine_requests",
		"Quarantined requests not yet replayed.")
	m.Quarantined = counter(r, "appwrite_sync_quarantined_total",
		"Requests put in quarantine.")
	m.BatchSize = histogramVec(r, "appwrite_sync_sink_batch_rows", prometheus.ExponentialBuckets(1, 2, 15),
		"Rows per batch handed to the sink.", "sink")
	m.ClaimLatency = histogramVec(r, "appwrite_sync_claim_latency_seconds", prometheus.DefBuckets,
		"Time to read a batch from the delivery log (and due retries).", "sink")
	m.ApplyLatency = histogramVec(r, "appwrite_sync_apply_latency_seconds", prometheus.DefBuckets,
		"Time the sink took to apply a batch.", "sink")
	m.SinkUp = gaugeVec(r, "appwrite_sync_sink_up",
		"1 while the sink accepts writes (or another replica delivers it), 0 while its delivery is paused (down or rejecting credentials).", "sink")
	m.TombstonesSwept = counter(r, "appwrite_sync_tombstones_swept_total",
		"Delete tombstones removed after the retention period.")
	m.QuarantineDropped = counterVec(r, "appwrite_sync_quarantine_dropped_total",
		"Quarantined requests removed by the sweep, by reason: retention (older than quarantine.retention) or cap (the oldest beyond quarantine.max_rows).", "reason")
	for _, reason := range []string{"retention", "cap"} {
		m.QuarantineDropped.WithLabelValues(reason) // exported at 0, so increase() sees the first drop
	}
	m.Reprojected = counterVec(r, "appwrite_sync_reprojected_rows_total",
		"Rows re-queued for a sink because its mapping fingerprint changed.", "sink")
	m.BackfillRows = counterVec(r, "appwrite_sync_backfill_rows_total",
		"Rows handled by backfill jobs, by result (read, changed, deleted).", "table", "result")
	m.BackfillJobs = counterVec(r, "appwrite_sync_backfill_jobs_total",
		"Backfill jobs finished, by mode and final state.", "mode", "state")
	m.WebhookEnabled = gaugeVec(r, "appwrite_sync_appwrite_webhook_enabled",
		"Appwrite's own view of the webhook (1.9+): 1 enabled, 0 disabled.", "webhook_id")
	m.WebhookAttempts = gaugeVec(r, "appwrite_sync_appwrite_webhook_attempts",
		"Appwrite's consecutive failed delivery counter for the webhook (1.9+); it disables the webhook at 10.", "webhook_id")
	m.SpoolBytes = gauge(r, "appwrite_sync_spool_bytes",
		"Bytes of changes in the local spool (state.spool_dir) not yet drained into the state store.")
	m.SpoolRecords = gauge(r, "appwrite_sync_spool_changes",
		"Changes in the local spool not yet drained into the state store.")
	m.SpoolOldestAge = gauge(r, "appwrite_sync_spool_oldest_age_seconds",
		"Age of the oldest change in the local spool (0 when it is empty).")
	m.SpoolAppended = counter(r, "appwrite_sync_spool_appended_total",
		"Changes the state store could not commit that were fsync'd to the local spool and answered 200.")
	m.SpoolDrained = counter(r, "appwrite_sync_spool_drained_total",
		"Spooled changes recorded in the state store once it was back.")
	m.Refused = counterVec(r, "appwrite_sync_refused_changes_total",
		"Verified changes answered 503 because the state store could not commit them and the spool could not take them, by reason (spool_off, spool_full, spool_unwritable; audit_unavailable: an audited change whose audit log entry could not be committed).", "reason")
	m.RefusedTables = gauge(r, "appwrite_sync_refused_tables",
		"Tables with refused changes not yet repaired: each gets an incremental reconcile once the state store is healthy (when the Appwrite API is configured); otherwise run one by hand.")
	m.Repairs = counter(r, "appwrite_sync_repair_jobs_total",
		"Incremental reconcile jobs queued automatically to repair refused changes or the events of a disabled webhook.")
	m.WebhookReenabled = counterVec(r, "appwrite_sync_appwrite_webhook_reenabled_total",
		"Times a disabled Appwrite webhook was enabled again by appwrite-sync (reconcile.reenable_webhooks).", "webhook_id")
	m.HistoryKept = counterVec(r, "appwrite_sync_history_kept_total",
		"Row versions kept in the state store's history of tables with postgres.history (each distinct version once; duplicates and replays are not counted).", "table")
	m.HistoryDelivered = counterVec(r, "appwrite_sync_history_delivered_total",
		"Row versions written to the warehouse's <table>_history tables (a redelivery after a crash counts again; the table keeps one row per version).", "table")
	m.HistoryRemoved = counterVec(r, "appwrite_sync_history_removed_total",
		"Row versions removed by the history retention (postgres.history.retention), by store: state (the state store) or warehouse (<table>_history).", "table", "store")
	m.AuditEntries = counterVec(r, "appwrite_sync_audit_entries_total",
		"Webhooks selected by audit.events, by result: recorded (a new audit log entry) or duplicate (a byte-identical redelivery, recorded once).", "result")
	m.AuditDelivered = counter(r, "appwrite_sync_audit_delivered_total",
		"Audit log entries copied from the state store to the warehouse table (audit.table).")
	m.AuditKept = gauge(r, "appwrite_sync_audit_kept_entries",
		"Audit log entries in the warehouse table (audit.table), after retention.")
	m.AuditRemoved = counterVec(r, "appwrite_sync_audit_removed_total",
		"Audit log entries removed by audit.retention, by store (state, warehouse).", "store")
	for _, store := range []string{"state", "warehouse"} {
		m.AuditRemoved.WithLabelValues(store) // exported at 0
	}
	m.FanoutQueue = gauge(r, "appwrite_sync_fanout_queue",
		"Relationship fan-outs not finished: changed rows whose linking rows are not all re-queued for the sinks yet.")
	m.FanoutRequeued = counter(r, "appwrite_sync_fanout_dependents_total",
		"Rows re-queued for every sink (re-projected with their related rows' newest versions) because a row they link to changed.")
	return m
}

// SetQueue sets a sink's queue gauges (pending rows, dead letters, lag in seconds).
func (m *Metrics) SetQueue(sink string, pending, deadLetter int64, lagSeconds float64) {
	m.Pending.WithLabelValues(sink).Set(float64(pending))
	m.DeadLetter.WithLabelValues(sink).Set(float64(deadLetter))
	m.Lag.WithLabelValues(sink).Set(lagSeconds)
}

// The constructors below create a collector and register it on r.

func counter(r *prometheus.Registry, name, help string) prometheus.Counter {
	return register(r, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

func counterVec(r *prometheus.Registry, name, help string, labels ...string) *prometheus.CounterVec {
	return register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

func gauge(r *prometheus.Registry, name, help string) prometheus.Gauge {
	return register(r, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

func gaugeVec(r *prometheus.Registry, name, help string, labels ...string) *prometheus.GaugeVec {
	return register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

func histogram(r *prometheus.Registry, name string, buckets []float64, help string) prometheus.Histogram {
	return register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}))
}

func histogramVec(r *prometheus.Registry, name string, buckets []float64, help string, labels ...string) *prometheus.HistogramVec {
	return register(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels))
}

func register[C prometheus.Collector](r *prometheus.Registry, c C) C {
	r.MustRegister(c)
	return c
}
