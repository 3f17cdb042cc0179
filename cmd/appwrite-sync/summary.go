package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
	"github.com/appwrite-sync/appwrite-sync/internal/periodic"
)

// summaryEvery is how often serve logs a summary of what happened at info (a variable for
// tests). One line per webhook is debug: at thousands per second it would be the whole log.
var summaryEvery = time.Minute

// summarizer logs, at info, what happened since its last line: webhooks recorded, ignored and
// refused by reason, changes new/stale/duplicate, and per sink the rows applied, pending, lag
// and dead letters. It reads the metrics the service keeps anyway (the queue gauges are
// refreshed by gauges), so it adds no bookkeeping of its own, and stays silent while nothing
// happens.
type summarizer struct {
	reg  prometheus.Gatherer
	log  *logrus.Entry
	last summaryCounts
}

// summaryCounts is what the summary reads from the metrics.
type summaryCounts struct {
	outcomes map[string]float64 // webhook outcome -> requests (counter)
	changes  map[string]float64 // ledger result -> changes (counter)
	applied  map[string]float64 // sink -> rows applied (counter)
	pending  map[string]float64 // sink -> rows (gauge)
	lag      map[string]float64 // sink -> seconds (gauge)
	dead     map[string]float64 // sink -> rows (gauge)
}

func newSummarizer(reg prometheus.Gatherer, log *logrus.Entry) *summarizer {
	s := &summarizer{reg: reg, log: log}
	s.last, _ = s.read()
	return s
}

// run logs a summary every interval until ctx ends.
func (s *summarizer) run(ctx context.Context, every time.Duration) {
	periodic.After(ctx, every, func() bool { s.tick(every); return true })
}

// tick logs what changed since the last tick, if anything did or rows are still pending.
func (s *summarizer) tick(every time.Duration) {
	cur, err := s.read()
	if err != nil {
		s.log.WithError(err).Debug("reading metrics for the summary failed")
		return
	}
	prev := s.last
	s.last = cur
	delta := func(cur, prev map[string]float64, k string) int64 { return int64(cur[k] - prev[k]) }

	webhooks := map[string]int64{}
	refused := map[string]int64{}
	for outcome := range cur.outcomes {
		n := delta(cur.outcomes, prev.outcomes, outcome)
		if n <= 0 {
			continue
		}
		switch outcome {
		case webhook.OutcomeRecorded, webhook.OutcomeIgnored, webhook.OutcomeAudited:
			webhooks[outcome] = n
		default:
			refused[outcome] = n
		}
	}
	changes := map[string]int64{}
	for result := range cur.changes {
		if n := delta(cur.changes, prev.changes, result); n > 0 {
			if result == "recorded" {
				result = webhook.RecordedNew.String() // the name the webhook answer uses
			}
			changes[result] = n
		}
	}
	sinks := map[string]map[string]any{}
	active := len(webhooks) > 0 || len(refused) > 0 || len(changes) > 0
	for _, name := range slices.Sorted(maps.Keys(cur.pending)) {
		applied := delta(cur.applied, prev.applied, name)
		dead := int64(cur.dead[name])
		if applied > 0 || cur.pending[name] > 0 || dead != int64(prev.dead[name]) {
			active = true
		}
		sinks[name] = map[string]any{"applied": applied, "pending": int64(cur.pending[name]),
			"lag_seconds": cur.lag[name], "dead_letter": dead}
	}
	if !active {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "last %s: webhooks %d recorded, %d ignored, %d refused", every,
		webhooks[webhook.OutcomeRecorded], webhooks[webhook.OutcomeIgnored], sum(refused))
	if n := webhooks[webhook.OutcomeAudited]; n > 0 {
		fmt.Fprintf(&b, ", %d in the audit log only", n)
	}
	if len(refused) > 0 {
		fmt.Fprintf(&b, " (%s)", formatCounts(refused))
	}
	if len(changes) > 0 {
		fmt.Fprintf(&b, "; changes %s", formatCounts(changes))
	}
	for _, name := range slices.Sorted(maps.Keys(sinks)) {
		v := sinks[name]
		fmt.Fprintf(&b, "; %s: %d applied, %d pending, lag %.1fs, %d dead letters", name,
			v["applied"], v["pending"], v["lag_seconds"], v["dead_letter"])
	}
	s.log.WithFields(logrus.Fields{"webhooks": webhooks, "refused": refused, "changes": changes, "sinks": sinks}).Info(b.String())
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// formatCounts renders {"stale": 2, "new": 5} as "new 5, stale 2".
func formatCounts(m map[string]int64) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// read collects the summary's metrics, summed over the labels it does not show.
func (s *summarizer) read() (summaryCounts, error) {
	c := summaryCounts{outcomes: map[string]float64{}, changes: map[string]float64{}, applied: map[string]float64{},
		pending: map[string]float64{}, lag: map[string]float64{}, dead: map[string]float64{}}
	families, err := s.reg.Gather()
	if err != nil {
		return c, err
	}
	into := map[string]struct {
		label string
		m     map[string]float64
	}{
		"appwrite_sync_webhook_requests_total": {"outcome", c.outcomes},
		"appwrite_sync_changes_total":          {"result", c.changes},
		"appwrite_sync_sink_applied_total":     {"sink", c.applied},
		"appwrite_sync_sink_pending_rows":      {"sink", c.pending},
		"appwrite_sync_sink_lag_seconds":       {"sink", c.lag},
		"appwrite_sync_dead_letter_rows":       {"sink", c.dead},
	}
	for _, f := range families {
		dst, ok := into[f.GetName()]
		if !ok {
			continue
		}
		for _, m := range f.GetMetric() {
			dst.m[labelValue(m, dst.label)] += metricValue(m)
		}
	}
	return c, nil
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func metricValue(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}
