package backfill

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/defaults"
	"github.com/appwrite-sync/appwrite-sync/internal/periodic"
)

// ProbeEveryDefault is how often Probe reads the webhooks when ProbeOptions.Every is zero.
const ProbeEveryDefault = time.Minute

// ProbeOptions configures a Probe. Client and IDs are required.
type ProbeOptions struct {
	Client *appwrite.Client
	// IDs are the Appwrite webhook ids to watch.
	IDs []string
	// Every is the probe interval. Default ProbeEveryDefault.
	Every time.Duration
	// Reenabled runs when a webhook seen disabled is enabled again (by someone, or by the probe
	// with Reenable): the changes Appwrite dropped since disabledSince must be read back (the
	// serve command wires outage.Guard.WebhookReenabled, which queues an incremental reconcile of
	// every table from then). May be nil.
	Reenabled func(ctx context.Context, webhookID string, disabledSince time.Time)
	// Reenable enables a webhook found disabled again (PUT /v1/webhooks/{id}, Appwrite 1.9+,
	// key scope webhooks.write): reconcile.reenable_webhooks.
	Reenable bool
	Metrics  *metrics.Metrics
	Log      *logrus.Entry
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// WebhookHealth is what the probe last learnt about one webhook.
type WebhookHealth struct {
	// Enabled is Appwrite's flag; nil until a probe succeeded.
	Enabled *bool `json:"enabled"`
	// Attempts is Appwrite's count of consecutive failed deliveries (it disables the webhook
	// at 10 by default).
	Attempts  int        `json:"attempts"`
	CheckedAt *time.Time `json:"checked_at,omitempty"`
	// Error is why the last probe failed, if it did.
	Error string `json:"error,omitempty"`
	// DisabledSince is when Appwrite disabled the webhook (its $updatedAt when first seen
	// disabled), or when the probe first saw its deliveries failing if that was earlier; set
	// while it is disabled.
	DisabledSince *time.Time `json:"disabled_since,omitempty"`
	// Action says what to do about a disabled webhook.
	Action string `json:"action,omitempty"`
	// Reenabled counts the times the probe enabled it again.
	Reenabled int `json:"reenabled,omitempty"`

	failingSince *time.Time // first probe that saw attempts > 0, until they are back to 0
}

// Probe watches webhooks' health through GET /v1/webhooks/{id} (Appwrite 1.9+). Appwrite
// drops every event of a disabled webhook and never retries a failed one, so a disabled
// webhook or rising attempts mean the sinks are drifting: Probe reports both in status,
// metrics and the log, and calls Reenabled when a webhook comes back. On older servers it
// logs once and stops.
type Probe struct {
	opts ProbeOptions
	log  *logrus.Entry

	mu          sync.Mutex
	health      map[string]*WebhookHealth
	unsupported string // why probing stopped
}

// NewProbe returns a probe; Run does the work.
func NewProbe(opts ProbeOptions) *Probe {
	defaults.Positive(&opts.Every, ProbeEveryDefault)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	defaults.Log(&opts.Log)
	p := &Probe{opts: opts, log: opts.Log.WithField("component", "webhook-probe"), health: map[string]*WebhookHealth{}}
	for _, id := range opts.IDs {
		p.health[id] = &WebhookHealth{}
	}
	return p
}

// Run probes every Every until ctx ends or the server turns out not to support it.
func (p *Probe) Run(ctx context.Context) {
	if len(p.opts.IDs) == 0 {
		return
	}
	periodic.Now(ctx, p.opts.Every, func() bool { return p.Check(ctx) })
}

// Check probes every webhook once. It returns false when probing should stop (the server
// predates 1.9, or ctx ended).
func (p *Probe) Check(ctx context.Context) bool {
	for _, id := range p.opts.IDs {
		w, err := p.opts.Client.GetWebhook(ctx, id)
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, appwrite.ErrNotSupported) {
			p.mu.Lock()
			p.unsupported = "this Appwrite server has no GET /v1/webhooks/{id} (it needs 1.9+): webhook health is not watched"
			p.mu.Unlock()
			p.log.WithError(err).Warn("webhook probe stopped: the server cannot report webhook health (Appwrite 1.9+ needed); rely on reconcile.incremental_every")
			return false
		}
		p.observe(ctx, id, w, err)
	}
	return true
}

func (p *Probe) observe(ctx context.Context, id string, w appwrite.Webhook, err error) {
	now := p.opts.Now()
	log := p.log.WithField("webhook_id", id)
	p.mu.Lock()
	h := p.health[id]
	prevEnabled, prevAttempts, prevErr := h.Enabled, h.Attempts, h.Error
	h.CheckedAt = &now
	if err != nil {
		h.Error = err.Error()
		p.mu.Unlock()
		if prevErr != h.Error {
			log.WithError(err).Warn("webhook probe failed")
		}
		return
	}
	enabled := w.Enabled
	h.Enabled, h.Attempts, h.Error = &enabled, w.Attempts, ""
	switch {
	case w.Attempts == 0 && enabled:
		h.failingSince = nil
	case h.failingSince == nil:
		h.failingSince = &now
	}
	if !enabled && h.DisabledSince == nil {
		since := now
		if at, perr := time.Parse(time.RFC3339Nano, w.UpdatedAt); perr == nil && at.Before(since) {
			since = at
		}
		if h.failingSince != nil && h.failingSince.Before(since) {
			since = *h.failingSince
		}
		h.DisabledSince = &since
	}
	disabledSince := now
	if h.DisabledSince != nil {
		disabledSince = *h.DisabledSince
	}
	p.mu.Unlock()

	p.gauges(id, enabled, w.Attempts)
	fields := logrus.Fields{"attempts": w.Attempts, "name": w.Name}
	switch {
	case !enabled:
		if prevEnabled == nil || *prevEnabled {
			log.WithFields(fields).Warn("Appwrite disabled the webhook after repeated failed deliveries: it drops every event until it is enabled again (Console → Settings → Webhooks); the sinks drift meanwhile")
		}
		if !p.opts.Reenable {
			p.setAction(id, "enable it again in the Appwrite console (Settings → Webhooks), or set reconcile.reenable_webhooks: true with a key holding webhooks.write (Appwrite 1.9+); its tables are then reconciled from disabled_since")
			return
		}
		if _, rerr := p.opts.Client.EnableWebhook(ctx, id); rerr != nil {
			p.setAction(id, "enabling it again failed ("+rerr.Error()+"): enable it in the Appwrite console (Settings → Webhooks)")
			log.WithError(rerr).Warn("enabling the webhook again failed")
			return
		}
		if m := p.opts.Metrics; m != nil {
			m.WebhookReenabled.WithLabelValues(id).Inc()
		}
		p.mu.Lock()
		on := true
		h.Enabled, h.Attempts, h.Reenabled = &on, 0, h.Reenabled+1
		p.mu.Unlock()
		p.gauges(id, true, 0)
		log.WithFields(fields).Warn("the webhook was disabled by Appwrite and is enabled again (reconcile.reenable_webhooks): reconciling its tables from when it was disabled")
		p.cameBack(ctx, id, disabledSince)
	case prevEnabled != nil && !*prevEnabled:
		log.WithFields(fields).Warn("the webhook is enabled again: reconciling every table to recover the events Appwrite dropped")
		p.cameBack(ctx, id, disabledSince)
	case w.Attempts > 0 && w.Attempts > prevAttempts:
		log.WithFields(fields).Warn("deliveries of the webhook are failing (Appwrite does not retry them and disables the webhook after 10 in a row)")
	}
}

func (p *Probe) gauges(id string, enabled bool, attempts int) {
	if m := p.opts.Metrics; m != nil {
		v := 0.0
		if enabled {
			v = 1
		}
		m.WebhookEnabled.WithLabelValues(id).Set(v)
		m.WebhookAttempts.WithLabelValues(id).Set(float64(attempts))
	}
}

func (p *Probe) setAction(id, action string) {
	p.mu.Lock()
	p.health[id].Action = action
	p.mu.Unlock()
}

// cameBack clears the disabled state and runs Reenabled.
func (p *Probe) cameBack(ctx context.Context, id string, disabledSince time.Time) {
	p.mu.Lock()
	h := p.health[id]
	h.DisabledSince, h.Action, h.failingSince = nil, "", nil
	p.mu.Unlock()
	if p.opts.Reenabled != nil {
		p.opts.Reenabled(ctx, id, disabledSince)
	}
}

// Status is the probe's part of GET /admin/status.
func (p *Probe) Status() map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	hooks := make(map[string]WebhookHealth, len(p.health))
	for _, id := range slices.Sorted(maps.Keys(p.health)) {
		hooks[id] = *p.health[id]
	}
	out := map[string]any{"webhooks": hooks, "supported": p.unsupported == ""}
	if p.unsupported != "" {
		out["reason"] = p.unsupported
	}
	return map[string]any{"appwrite_webhooks": out}
}
