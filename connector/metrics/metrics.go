// Package metrics defines every Prometheus collector of appwrite-sync in one place, so the
// README's metrics reference can be checked against a single file. Names are prefixed
// appwrite_sync_. Components receive *Metrics; nothing is registered globally.
package metrics

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the collectors. Each is declared once, by its field: the field's type says the
// kind, its tag the name (metric), the label names (labels, comma-separated), the help text,
// the histogram buckets (buckets: a key of the buckets map; prometheus.DefBuckets when absent)
// and the values of a single label exported at 0 before anything happened (zero, so
// increase() sees the first one). New creates and registers every field from its tag.
type Metrics struct {
	Registry *prometheus.Registry

	WebhookRequests *prometheus.CounterVec   `metric:"appwrite_sync_webhook_requests_total" labels:"webhook,outcome" help:"Webhook requests by webhook and outcome (recorded, audited, ignored, quarantined, unauthorized, too_large, unavailable, bad_request, not_found, rate_limited, busy)."`
	RateLimited     *prometheus.CounterVec   `metric:"appwrite_sync_webhook_rate_limited_total" labels:"webhook" help:"Webhook requests refused with 429 because their client IP was over limits.rate_per_source. Appwrite counts each as a failed delivery."`
	IntakeRefused   *prometheus.CounterVec   `metric:"appwrite_sync_webhook_intake_refused_total" labels:"webhook" help:"Webhook requests refused with 503 because no room for their body was free in limits.body_budget_bytes within limits.body_wait. Sources that delivered validly signed webhooks in the last hour use a reserved share."`
	Draining        prometheus.Gauge         `metric:"appwrite_sync_draining" help:"1 while the service drains after SIGTERM/SIGINT (/readyz answers 503, webhooks still taken for server.drain_delay)."`
	IngestLatency   *prometheus.HistogramVec `metric:"appwrite_sync_ingest_latency_seconds" labels:"outcome" buckets:"latency" help:"Time from request start to answer, by outcome."`
	Changes         *prometheus.CounterVec   `metric:"appwrite_sync_changes_total" labels:"table,result" help:"Changes offered to the ledger by result: recorded (newer version), stale (older), duplicate (same version)."`
	Ties            *prometheus.CounterVec   `metric:"appwrite_sync_version_ties_total" labels:"table" help:"Different contents seen with the same $updatedAt and op; a version read from the REST API, else the content hash, broke the tie."`
	BelowHorizon    *prometheus.CounterVec   `metric:"appwrite_sync_changes_below_horizon_total" labels:"table" help:"Webhook upserts refused (answered stale) because the ledger does not hold the row and they are not newer than the delete tombstones swept from its table: replays of deleted rows, or rows written with an old $updatedAt."`
	GroupCommitSize prometheus.Histogram     `metric:"appwrite_sync_group_commit_changes" buckets:"commit" help:"Changes per ledger transaction."`
	Pending         *prometheus.GaugeVec     `metric:"appwrite_sync_sink_pending_rows" labels:"sink" help:"Rows whose newest version is not yet applied to the sink (excluding dead letters)."`
	Lag             *prometheus.GaugeVec     `metric:"appwrite_sync_sink_lag_seconds" labels:"sink" help:"Age of the oldest pending change of the sink."`
	Applied         *prometheus.CounterVec   `metric:"appwrite_sync_sink_applied_total" labels:"sink" help:"Rows applied to the sink."`
	Failed          *prometheus.CounterVec   `metric:"appwrite_sync_sink_failed_total" labels:"sink,kind" help:"Failed applies by kind: retry (batch retried later), dead_letter (row parked), unavailable (sink paused)."`
	DeadLetter      *prometheus.GaugeVec     `metric:"appwrite_sync_dead_letter_rows" labels:"sink" help:"Dead-lettered rows per sink."`
	Quarantine      prometheus.Gauge         `metric:"appwrite_sync_quarantine_requests" help:"Quarantined requests not yet replayed."`
	Quarantined     prometheus.Counter       `metric:"appwrite_sync_quarantined_total" help:"Requests put in quarantine."`
	BatchSize       *prometheus.HistogramVec `metric:"appwrite_sync_sink_batch_rows" labels:"sink" buckets:"batch" help:"Rows per batch handed to the sink."`
	ClaimLatency    *prometheus.HistogramVec `metric:"appwrite_sync_claim_latency_seconds" labels:"sink" help:"Time to read a batch from the delivery log (and due retries)."`
	ApplyLatency    *prometheus.HistogramVec `metric:"appwrite_sync_apply_latency_seconds" labels:"sink" help:"Time the sink took to apply a batch."`
	SinkUp          *prometheus.GaugeVec     `metric:"appwrite_sync_sink_up" labels:"sink" help:"1 while the sink accepts writes (or another replica delivers it), 0 while its delivery is paused (down or rejecting credentials)."`
	TombstonesSwept prometheus.Counter       `metric:"appwrite_sync_tombstones_swept_total" help:"Delete tombstones removed after the retention period."`
	Reprojected     *prometheus.CounterVec   `metric:"appwrite_sync_reprojected_rows_total" labels:"sink" help:"Rows re-queued for a sink because its mapping fingerprint changed."`
	BackfillRows    *prometheus.CounterVec   `metric:"appwrite_sync_backfill_rows_total" labels:"table,result" help:"Rows handled by backfill jobs, by result (read, changed, deleted)."`
	BackfillJobs    *prometheus.CounterVec   `metric:"appwrite_sync_backfill_jobs_total" labels:"mode,state" help:"Backfill jobs finished, by mode and final state."`
	WebhookEnabled  *prometheus.GaugeVec     `metric:"appwrite_sync_appwrite_webhook_enabled" labels:"webhook_id" help:"Appwrite's own view of the webhook (1.9+): 1 enabled, 0 disabled."`
	WebhookAttempts *prometheus.GaugeVec     `metric:"appwrite_sync_appwrite_webhook_attempts" labels:"webhook_id" help:"Appwrite's consecutive failed delivery counter for the webhook (1.9+); it disables the webhook at 10."`

	QuarantineDropped *prometheus.CounterVec `metric:"appwrite_sync_quarantine_dropped_total" labels:"reason" zero:"retention,cap" help:"Quarantined requests removed by the sweep, by reason: retention (older than quarantine.retention) or cap (the oldest beyond quarantine.max_rows)."`
	// The state store outage spool and the repair of what was refused (issue 22).
	SpoolBytes       prometheus.Gauge       `metric:"appwrite_sync_spool_bytes" help:"Bytes of changes in the local spool (state.spool_dir) not yet drained into the state store."`
	SpoolRecords     prometheus.Gauge       `metric:"appwrite_sync_spool_changes" help:"Changes in the local spool not yet drained into the state store."`
	SpoolOldestAge   prometheus.Gauge       `metric:"appwrite_sync_spool_oldest_age_seconds" help:"Age of the oldest change in the local spool (0 when it is empty)."`
	SpoolAppended    prometheus.Counter     `metric:"appwrite_sync_spool_appended_total" help:"Changes the state store could not commit that were fsync'd to the local spool and answered 200."`
	SpoolDrained     prometheus.Counter     `metric:"appwrite_sync_spool_drained_total" help:"Spooled changes recorded in the state store once it was back."`
	Refused          *prometheus.CounterVec `metric:"appwrite_sync_refused_changes_total" labels:"reason" help:"Verified changes answered 503 because the state store could not commit them and the spool could not take them, by reason (spool_off, spool_full, spool_unwritable; audit_unavailable: an audited change whose audit log entry could not be committed)."`
	RefusedTables    prometheus.Gauge       `metric:"appwrite_sync_refused_tables" help:"Tables with refused changes not yet repaired: each gets an incremental reconcile once the state store is healthy (when the Appwrite API is configured); otherwise run one by hand."`
	Repairs          prometheus.Counter     `metric:"appwrite_sync_repair_jobs_total" help:"Incremental reconcile jobs queued automatically to repair refused changes or the events of a disabled webhook."`
	WebhookReenabled *prometheus.CounterVec `metric:"appwrite_sync_appwrite_webhook_reenabled_total" labels:"webhook_id" help:"Times a disabled Appwrite webhook was enabled again by appwrite-sync (reconcile.reenable_webhooks)."`
	// Row history (postgres.history, issue 19).
	HistoryKept      *prometheus.CounterVec `metric:"appwrite_sync_history_kept_total" labels:"table" help:"Row versions kept in the state store's history of tables with postgres.history (each distinct version once; duplicates and replays are not counted)."`
	HistoryDelivered *prometheus.CounterVec `metric:"appwrite_sync_history_delivered_total" labels:"table" help:"Row versions written to the warehouse's <table>_history tables (a redelivery after a crash counts again; the table keeps one row per version)."`
	HistoryRemoved   *prometheus.CounterVec `metric:"appwrite_sync_history_removed_total" labels:"table,store" help:"Row versions removed by the history retention (postgres.history.retention), by store: state (the state store) or warehouse (<table>_history)."`

	// The audit log (issue 19).
	AuditEntries   *prometheus.CounterVec `metric:"appwrite_sync_audit_entries_total" labels:"result" help:"Webhooks selected by audit.events, by result: recorded (a new audit log entry) or duplicate (a byte-identical redelivery, recorded once)."`
	AuditDelivered prometheus.Counter     `metric:"appwrite_sync_audit_delivered_total" help:"Audit log entries copied from the state store to the warehouse table (audit.table)."`
	AuditKept      prometheus.Gauge       `metric:"appwrite_sync_audit_kept_entries" help:"Audit log entries in the warehouse table (audit.table), after retention."`
	AuditRemoved   *prometheus.CounterVec `metric:"appwrite_sync_audit_removed_total" labels:"store" zero:"state,warehouse" help:"Audit log entries removed by audit.retention, by store (state, warehouse)."`

	// What the row history's and the audit log's deliveries have not written yet.
	LogPending *prometheus.GaugeVec `metric:"appwrite_sync_log_pending_entries" labels:"log" help:"Entries recorded in the state store and not yet in the warehouse, by log: history (row versions for the <table>_history tables) or audit (entries for audit.table)."`
	LogLag     *prometheus.GaugeVec `metric:"appwrite_sync_log_lag_seconds" labels:"log" help:"Age of the oldest entry of the log (history, audit) not yet in the warehouse; 0 when none."`

	FanoutQueue    prometheus.Gauge   `metric:"appwrite_sync_fanout_queue" help:"Relationship fan-outs not finished: changed rows whose linking rows are not all re-queued for the sinks yet."`
	FanoutRequeued prometheus.Counter `metric:"appwrite_sync_fanout_dependents_total" help:"Rows re-queued for every sink (re-projected with their related rows' newest versions) because a row they link to changed."`
}

// buckets are the histograms' bucket sets, by the name their tags use.
var buckets = map[string][]float64{
	"latency": {.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	"commit":  prometheus.ExponentialBuckets(1, 2, 11),
	"batch":   prometheus.ExponentialBuckets(1, 2, 15),
}

// New creates and registers every collector on a fresh registry (plus Go and process
// collectors), one for each tagged field of Metrics: a metric is declared by its field alone.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{Registry: r}
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name, ok := f.Tag.Lookup("metric")
		if !ok {
			continue
		}
		c := collector(f, name)
		r.MustRegister(c)
		v.Field(i).Set(reflect.ValueOf(c))
		if zero := f.Tag.Get("zero"); zero != "" {
			vec, ok := c.(*prometheus.CounterVec)
			if !ok {
				panic(fmt.Sprintf("metrics: %s: zero is for counter vectors", f.Name))
			}
			for _, value := range strings.Split(zero, ",") {
				vec.WithLabelValues(value)
			}
		}
	}
	return m
}

// collector creates the collector field f declares.
func collector(f reflect.StructField, name string) prometheus.Collector {
	help := f.Tag.Get("help")
	var labels []string
	if l := f.Tag.Get("labels"); l != "" {
		labels = strings.Split(l, ",")
	}
	b := prometheus.DefBuckets
	if key := f.Tag.Get("buckets"); key != "" {
		var ok bool
		if b, ok = buckets[key]; !ok {
			panic(fmt.Sprintf("metrics: %s: no buckets %q", f.Name, key))
		}
	}
	switch f.Type {
	case reflect.TypeFor[prometheus.Counter]():
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	case reflect.TypeFor[*prometheus.CounterVec]():
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	case reflect.TypeFor[prometheus.Gauge]():
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	case reflect.TypeFor[*prometheus.GaugeVec]():
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	case reflect.TypeFor[prometheus.Histogram]():
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: b})
	case reflect.TypeFor[*prometheus.HistogramVec]():
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: b}, labels)
	}
	panic(fmt.Sprintf("metrics: %s: %s is not a collector New makes", f.Name, f.Type))
}

// SetQueue sets a sink's queue gauges (pending rows, dead letters, lag in seconds).
func (m *Metrics) SetQueue(sink string, pending, deadLetter int64, lagSeconds float64) {
	m.Pending.WithLabelValues(sink).Set(float64(pending))
	m.DeadLetter.WithLabelValues(sink).Set(float64(deadLetter))
	m.Lag.WithLabelValues(sink).Set(lagSeconds)
}
