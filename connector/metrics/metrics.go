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
// collectors).
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r}
	m.WebhookRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_webhook_requests_total",
		Help: "Webhook requests by webhook and outcome (recorded, audited, ignored, quarantined, unauthorized, too_large, unavailable, bad_request, not_found, rate_limited, busy)."}, []string{"webhook", "outcome"})
	m.RateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_webhook_rate_limited_total",
		Help: "Webhook requests refused with 429 because their client IP was over limits.rate_per_source. Appwrite counts each as a failed delivery."}, []string{"webhook"})
	m.IntakeRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_webhook_intake_refused_total",
		Help: "Webhook requests refused with 503 because no room for their body was free in limits.body_budget_bytes within limits.body_wait. Sources that delivered validly signed webhooks in the last hour use a reserved share."}, []string{"webhook"})
	m.Draining = prometheus.NewGauge(prometheus.GaugeOpts{Name: "appwrite_sync_draining",
		Help: "1 while the service drains after SIGTERM/SIGINT (/readyz answers 503, webhooks still taken for server.drain_delay)."})
	m.IngestLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "appwrite_sync_ingest_latency_seconds",
		Help: "Time from request start to answer, by outcome.", Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"outcome"})
	m.Changes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_changes_total",
		Help: "Changes offered to the ledger by result: recorded (newer version), stale (older), duplicate (same version)."}, []string{"table", "result"})
	m.Ties = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_version_ties_total",
		Help: "Different contents seen with the same $updatedAt and op; a version read from the REST API, else the content hash, broke the tie."}, []string{"table"})
	m.BelowHorizon = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_changes_below_horizon_total",
		Help: "Webhook upserts refused (answered stale) because the ledger does not hold the row and they are not newer than the delete tombstones swept from its table: replays of deleted rows, or rows written with an old $updatedAt."}, []string{"table"})
	m.GroupCommitSize = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "appwrite_sync_group_commit_changes",
		Help: "Changes per ledger transaction.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)})
	m.Pending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "appwrite_sync_sink_pending_rows",
		Help: "Rows whose newest version is not yet applied to the sink (excluding dead letters)."}, []string{"sink"})
	m.Lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "appwrite_sync_sink_lag_seconds",
		Help: "Age of the oldest pending change of the sink."}, []string{"sink"})
	m.Applied = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_sink_applied_total",
		Help: "Rows applied to the sink."}, []string{"sink"})
	m.Failed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_sink_failed_total",
		Help: "Failed applies by kind: retry (batch retried later), dead_letter (row parked), unavailable (sink paused)."}, []string{"sink", "kind"})
	m.DeadLetter = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "appwrite_sync_dead_letter_rows",
		Help: "Dead-lettered rows per sink."}, []string{"sink"})
	m.Quarantine = prometheus.NewGauge(prometheus.GaugeOpts{Name: "appwrite_sync_quarantine_requests",
		Help: "Quarantined requests not yet replayed."})
	m.Quarantined = prometheus.NewCounter(prometheus.CounterOpts{Name: "appwrite_sync_quarantined_total",
		Help: "Requests put in quarantine."})
	m.BatchSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "appwrite_sync_sink_batch_rows",
		Help: "Rows per batch handed to the sink.", Buckets: prometheus.ExponentialBuckets(1, 2, 15)}, []string{"sink"})
	m.ClaimLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "appwrite_sync_claim_latency_seconds",
		Help: "Time to read a batch from the delivery log (and due retries).", Buckets: prometheus.DefBuckets}, []string{"sink"})
	m.ApplyLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "appwrite_sync_apply_latency_seconds",
		Help: "Time the sink took to apply a batch.", Buckets: prometheus.DefBuckets}, []string{"sink"})
	m.SinkUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "appwrite_sync_sink_up",
		Help: "1 while the sink accepts writes (or another replica delivers it), 0 while its delivery is paused (down or rejecting credentials)."}, []string{"sink"})
	m.TombstonesSwept = prometheus.NewCounter(prometheus.CounterOpts{Name: "appwrite_sync_tombstones_swept_total",
		Help: "Delete tombstones removed after the retention period."})
	m.QuarantineDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_quarantine_dropped_total",
		Help: "Quarantined requests removed by the sweep, by reason: retention (older than quarantine.retention) or cap (the oldest beyond quarantine.max_rows)."}, []string{"reason"})
	f(m.QuarantineDropped)
	for _, reason := range []string{"retention", "cap"} {
		m.QuarantineDropped.WithLabelValues(reason) // exported at 0, so increase() sees the first drop
	}
	m.Reprojected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_reprojected_rows_total",
		Help: "Rows re-queued for a sink because its mapping fingerprint changed."}, []string{"sink"})
	m.BackfillRows = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_backfill_rows_total",
		Help: "Rows handled by backfill jobs, by result (read, changed, deleted)."}, []string{"table", "result"})
	m.BackfillJobs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_backfill_jobs_total",
		Help: "Backfill jobs finished, by mode and final state."}, []string{"mode", "state"})
	m.WebhookEnabled = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "appwrite_sync_appwrite_webhook_enabled",
		Help: "Appwrite's own view of the webhook (1.9+): 1 enabled, 0 disabled."}, []string{"webhook_id"})
	m.WebhookAttempts = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "appwrite_sync_appwrite_webhook_attempts",
		Help: "Appwrite's consecutive failed delivery counter for the webhook (1.9+); it disables the webhook at 10."}, []string{"webhook_id"})
	m.SpoolBytes = prometheus.NewGauge(prometheus.GaugeOpts{Name: "appwrite_sync_spool_bytes",
		Help: "Bytes of changes in the local spool (state.spool_dir) not yet drained into the state store."})
	m.SpoolRecords = prometheus.NewGauge(prometheus.GaugeOpts{Name: "appwrite_sync_spool_changes",
		Help: "Changes in the local spool not yet drained into the state store."})
	m.SpoolOldestAge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "appwrite_sync_spool_oldest_age_seconds",
		Help: "Age of the oldest change in the local spool (0 when it is empty)."})
	m.SpoolAppended = prometheus.NewCounter(prometheus.CounterOpts{Name: "appwrite_sync_spool_appended_total",
		Help: "Changes the state store could not commit that were fsync'd to the local spool and answered 200."})
	m.SpoolDrained = prometheus.NewCounter(prometheus.CounterOpts{Name: "appwrite_sync_spool_drained_total",
		Help: "Spooled changes recorded in the state store once it was back."})
	m.Refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_refused_changes_total",
		Help: "Verified changes answered 503 because the state store could not commit them and the spool could not take them, by reason (spool_off, spool_full, spool_unwritable; audit_unavailable: an audited change whose audit log entry could not be committed)."}, []string{"reason"})
	m.RefusedTables = prometheus.NewGauge(prometheus.GaugeOpts{Name: "appwrite_sync_refused_tables",
		Help: "Tables with refused changes not yet repaired: each gets an incremental reconcile once the state store is healthy (when the Appwrite API is configured); otherwise run one by hand."})
	m.Repairs = prometheus.NewCounter(prometheus.CounterOpts{Name: "appwrite_sync_repair_jobs_total",
		Help: "Incremental reconcile jobs queued automatically to repair refused changes or the events of a disabled webhook."})
	m.WebhookReenabled = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_appwrite_webhook_reenabled_total",
		Help: "Times a disabled Appwrite webhook was enabled again by appwrite-sync (reconcile.reenable_webhooks)."}, []string{"webhook_id"})
	m.HistoryKept = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_history_kept_total",
		Help: "Row versions kept in the state store's history of tables with postgres.history (each distinct version once; duplicates and replays are not counted)."}, []string{"table"})
	m.HistoryDelivered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_history_delivered_total",
		Help: "Row versions written to the warehouse's <table>_history tables (a redelivery after a crash counts again; the table keeps one row per version)."}, []string{"table"})
	m.HistoryRemoved = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_history_removed_total",
		Help: "Row versions removed by the history retention (postgres.history.retention), by store: state (the state store) or warehouse (<table>_history)."}, []string{"table", "store"})
	f(m.HistoryKept)
	f(m.HistoryDelivered)
	f(m.HistoryRemoved)
	m.AuditEntries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_audit_entries_total",
		Help: "Webhooks selected by audit.events, by result: recorded (a new audit log entry) or duplicate (a byte-identical redelivery, recorded once)."}, []string{"result"})
	m.AuditDelivered = prometheus.NewCounter(prometheus.CounterOpts{Name: "appwrite_sync_audit_delivered_total",
		Help: "Audit log entries copied from the state store to the warehouse table (audit.table)."})
	m.AuditKept = prometheus.NewGauge(prometheus.GaugeOpts{Name: "appwrite_sync_audit_kept_entries",
		Help: "Audit log entries in the warehouse table (audit.table), after retention."})
	m.AuditRemoved = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appwrite_sync_audit_removed_total",
		Help: "Audit log entries removed by audit.retention, by store (state, warehouse)."}, []string{"store"})
	for _, store := range []string{"state", "warehouse"} {
		m.AuditRemoved.WithLabelValues(store)
	}
	for _, c := range []prometheus.Collector{m.AuditEntries, m.AuditDelivered, m.AuditKept, m.AuditRemoved} {
		f(c)
	}
	m.FanoutQueue = prometheus.NewGauge(prometheus.GaugeOpts{Name: "appwrite_sync_fanout_queue",
		Help: "Relationship fan-outs not finished: changed rows whose linking rows are not all re-queued for the sinks yet."})
	m.FanoutRequeued = prometheus.NewCounter(prometheus.CounterOpts{Name: "appwrite_sync_fanout_dependents_total",
		Help: "Rows re-queued for every sink (re-projected with their related rows' newest versions) because a row they link to changed."})
	f(m.FanoutQueue)
	f(m.FanoutRequeued)
	for _, c := range []prometheus.Collector{m.SpoolBytes, m.SpoolRecords, m.SpoolOldestAge, m.SpoolAppended, m.SpoolDrained, m.Refused,
		m.RefusedTables, m.Repairs, m.WebhookReenabled} {
		f(c)
	}
	for _, c := range []prometheus.Collector{m.WebhookRequests, m.RateLimited, m.IntakeRefused, m.Draining, m.IngestLatency, m.Changes, m.Ties, m.BelowHorizon, m.GroupCommitSize,
		m.Pending, m.Lag, m.Applied, m.Failed, m.DeadLetter, m.Quarantine, m.Quarantined, m.BatchSize, m.ClaimLatency,
		m.ApplyLatency, m.SinkUp, m.TombstonesSwept, m.Reprojected, m.BackfillRows, m.BackfillJobs, m.WebhookEnabled, m.WebhookAttempts} {
		f(c)
	}
	return m
}

// SetQueue sets a sink's queue gauges (pending rows, dead letters, lag in seconds).
func (m *Metrics) SetQueue(sink string, pending, deadLetter int64, lagSeconds float64) {
	m.Pending.WithLabelValues(sink).Set(float64(pending))
	m.DeadLetter.WithLabelValues(sink).Set(float64(deadLetter))
	m.Lag.WithLabelValues(sink).Set(lagSeconds)
}
