package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/admin"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/connector/outage"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
	"github.com/appwrite-sync/appwrite-sync/internal/periodic"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// startupWait bounds how long serve waits for the state store at start.
const startupWait = 60 * time.Second

// sweepEvery is how often delete tombstones older than the retention are removed, and the
// quarantine is held to quarantine.retention and quarantine.max_rows.
const sweepEvery = time.Hour

// gaugeEvery is how often the queue gauges on /metrics are refreshed from the state store
// (a variable for tests).
var gaugeEvery = 15 * time.Second

func newLogger(cfg *config.Config, w io.Writer) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(w)
	lvl, err := logrus.ParseLevel(cfg.Log.Level)
	if err != nil {
		lvl = logrus.InfoLevel
	}
	l.SetLevel(lvl)
	format := cfg.Log.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "json" {
		l.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return logrus.NewEntry(l)
}

// app is the running service, built in dependency order by runServe.
type app struct {
	cfg      *config.Config
	log      *logrus.Entry
	metrics  *metrics.Metrics
	state    *pgxpool.Pool
	logPool  *pgxpool.Pool // the recorder's and the delivery queue's (generic plans)
	wh       *pgxpool.Pool
	recorder *ledger.Recorder
	engine   *ledger.Engine
	fanout   *ledger.Fanout // nil without relationships (relations.go)
	admin    *ledger.Admin
	sinks    []sink.Sink
	handler  *webhook.Handler
	// pubTLS and adminTLS are nil for plain HTTP listeners.
	pubTLS, adminTLS *tls.Config
	// backfill, schedule and probe exist only when the Appwrite API is configured.
	backfill *backfill.Manager
	schedule *backfill.Scheduler
	probe    *backfill.Probe
	// draining is set at the first SIGTERM/SIGINT: /readyz answers 503 from then on.
	draining atomic.Bool
	// outage spools changes while the state store cannot commit and repairs refused ones.
	outage *outage.Guard
	// history delivers the row history (postgres.history) to the warehouse; nil when no table
	// keeps one (history.go).
	history       *ledger.HistoryDelivery
	historyWriter historySweeper
	// audit is the audit log; nil without audit.events.
	audit *auditLog
}

func runServe(ctx context.Context, cfg *config.Config, migrate bool, logOut io.Writer) error {
	log := newLogger(cfg, logOut)
	log.WithFields(logrus.Fields{"version": version, "listen": cfg.Listen, "admin": cfg.Admin.Listen,
		"tls": cfg.TLS.Enabled(), "admin_tls": cfg.Admin.TLS.Enabled(), "rate_per_source": cfg.Limits.RatePerSource,
		"tables": len(cfg.Mapping.Tables), "state": config.Redact(cfg.State.DatabaseURL)}).Info("starting appwrite-sync")
	mem, gc := applyRuntime(cfg.MemoryLimit)
	logMemoryLimit(log, mem)
	logGCPercent(log, gc)

	if migrate {
		bo := backoff.NewExponentialBackOff()
		v, err := backoff.Retry(ctx, func() (uint, error) {
			v, err := migrations.Up(ctx, cfg.State.DatabaseURL)
			if errors.Is(err, migrations.ErrConnect) {
				log.WithError(err).Warn("state store not reachable yet; retrying")
				return 0, err
			}
			if err != nil {
				return 0, backoff.Permanent(err)
			}
			return v, nil
		}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(startupWait))
		if err != nil {
			return fmt.Errorf("migrating state store: %w", err)
		}
		log.WithField("version", v).Info("state store migrated")
	}
	a, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	return a.run(ctx)
}

func build(ctx context.Context, cfg *config.Config, log *logrus.Entry) (*app, error) {
	gin.SetMode(gin.ReleaseMode)
	a := &app{cfg: cfg, log: log, metrics: metrics.New()}
	var err error
	// Certificates first: a broken pair must stop the start before anything else is opened.
	if cfg.TLS.Enabled() {
		if a.pubTLS, err = serverTLS(cfg.TLS, log); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	if cfg.Admin.TLS.Enabled() {
		if a.adminTLS, err = serverTLS(cfg.Admin.TLS, log); err != nil {
			return nil, fmt.Errorf("admin.tls: %w", err)
		}
	}
	if a.state, err = ledger.OpenPool(ctx, cfg.State.DatabaseURL, 10); err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	// The recorder and the delivery queue, the hot path, have their own connections: they run
	// with generic plans (ledger.OpenLogPool says why).
	if a.logPool, err = ledger.OpenLogPool(ctx, cfg.State.DatabaseURL, 12); err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	a.wh = a.state
	if cfg.Warehouse.DatabaseURL != cfg.State.DatabaseURL {
		if a.wh, err = ledger.OpenPool(ctx, cfg.Warehouse.DatabaseURL, 10); err != nil {
			return nil, fmt.Errorf("warehouse: %w", err)
		}
	}
	a.admin = ledger.NewAdmin(a.state)
	if a.sinks, err = buildSinks(cfg, a.wh, log); err != nil {
		return nil, err
	}
	sinkCfgs := make([]ledger.SinkConfig, 0, len(a.sinks))
	for _, s := range a.sinks {
		sinkCfgs = append(sinkCfgs, ledger.SinkConfig{Sink: s}) // the sink's own batch size (sink.Batcher)
	}
	joiner := ledger.NewJoiner(a.logPool, cfg.Mapping) // nil without relationships
	a.engine = ledger.NewEngine(ledger.NewQueue(a.logPool), sinkCfgs, ledger.EngineOptions{
		Lease: cfg.Delivery.Lease, PollInterval: cfg.Delivery.PollInterval, MaxBackoff: cfg.Delivery.MaxBackoff, Linger: cfg.Delivery.Linger,
		Busy: func() bool { return a.recorder.Saturated() }, Join: joiner.Join, Metrics: a.metrics, Log: log})
	a.fanout = a.newFanout()
	a.recorder = ledger.NewRecorder(a.logPool, ledger.RecorderOptions{
		MaxWait: cfg.State.GroupCommitWait, MaxBatch: cfg.State.GroupCommitMax,
		Metrics: a.metrics, Log: log, Notify: a.notify, History: a.historyPolicy, Relations: cfg.Mapping,
		// a.audit is set below, before any webhook is taken.
		AuditNotify: func() { a.audit.notify() }})
	a.history = a.buildHistory(log)
	if err := a.buildBackfill(); err != nil {
		return nil, err
	}
	a.outage = a.newOutage()
	if a.audit, err = newAuditLog(a); err != nil {
		return nil, err
	}
	eps := make([]webhook.Endpoint, 0, len(cfg.Webhooks))
	for _, w := range cfg.Webhooks {
		v, err := webhook.NewVerifier(w.URL, w.SigningKeys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.Name, err)
		}
		eps = append(eps, webhook.Endpoint{Name: w.Name, URL: w.URL, Path: w.Path, Verifier: v, BasicUser: w.BasicUser, BasicPass: w.BasicPass})
	}
	a.handler, err = webhook.NewHandler(webhook.Options{
		Endpoints: eps, MaxBodyBytes: cfg.Limits.MaxBodyBytes, Recorder: storeRecorder{a},
		Mapped: a.mapped,
		Log:    log, Observe: a.observe,
		RateLimit:  webhook.RateLimit{PerSecond: cfg.Limits.RatePerSource, Burst: cfg.Limits.Burst},
		BodyBudget: cfg.Limits.BodyBudget, BodyWait: cfg.Limits.BodyWait, Audit: a.audit.auditor()})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (a *app) observe(r webhook.Result) {
	a.metrics.WebhookRequests.WithLabelValues(r.Webhook, r.Outcome).Inc()
	switch r.Outcome {
	case webhook.OutcomeRateLimited:
		a.metrics.RateLimited.WithLabelValues(r.Webhook).Inc()
	case webhook.OutcomeBusy:
		a.metrics.IntakeRefused.WithLabelValues(r.Webhook).Inc()
	}
	a.metrics.IngestLatency.WithLabelValues(r.Outcome).Observe(r.Latency.Seconds())
	if r.Outcome == webhook.OutcomeQuarantined {
		a.metrics.Quarantined.Inc()
	}
}

// storeRecorder adapts the ledger to the webhook handler.
type storeRecorder struct{ a *app }

func (s storeRecorder) Record(ctx context.Context, ch connector.Change) (webhook.Recorded, error) {
	return s.a.outage.Record(ctx, ch)
}

func (s storeRecorder) Quarantine(ctx context.Context, q webhook.Quarantined) error {
	_, err := s.a.admin.Quarantine(ctx, q.Webhook, q.Reason, q.Headers, q.Body)
	return err
}

// replay re-runs a quarantined request through decode and the recorder.
func (a *app) replay(ctx context.Context, q ledger.Quarantined) (bool, string) {
	return webhook.Replay(ctx, q.Headers, []byte(q.Body), a.mapped, a.recorder.RecordResult)
}

// mapped reports whether the mapping has the table.
func (a *app) mapped(k connector.TableKey) bool { return a.cfg.Mapping.Lookup(k) != nil }

func (a *app) sinkNames() []string {
	out := make([]string, len(a.sinks))
	for i, s := range a.sinks {
		out[i] = s.Name()
	}
	return out
}

// reproject queues rows of tables whose mapping changed for a sink since it last ran.
func (a *app) reproject(ctx context.Context) error {
	mapped := make([]connector.TableKey, 0, len(a.cfg.Mapping.Tables))
	for _, t := range a.cfg.Mapping.Tables {
		mapped = append(mapped, t.Key())
	}
	if err := a.rebuildLinks(ctx); err != nil {
		return err
	}
	return a.admin.ReprojectChanged(ctx, a.sinks, mapped, a.metrics, a.log)
}

// errDraining is /readyz's answer from the first SIGTERM/SIGINT on.
var errDraining = &ledger.NotReadyError{Reason: "shutting down",
	Err: errors.New("draining after a stop signal: still taking webhooks until server.drain_delay ends")}

func (a *app) ready(ctx context.Context) error {
	if a.draining.Load() {
		return errDraining
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return a.outage.Ready(ctx)
}

func (a *app) run(ctx context.Context) error {
	pub, err := a.publicRouter()
	if err != nil {
		return err
	}
	servers := []*http.Server{a.server(a.cfg.Listen, pub, a.pubTLS)}
	if a.cfg.Admin.Listen != "" {
		var bf admin.Backfill // nil unless configured: the routes then answer 501
		if a.backfill != nil {
			bf = a.backfill
		}
		extra := func() map[string]any {
			out := a.outage.Status()
			a.fanoutStatus(out)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			for log, v := range a.logBacklogs(ctx) {
				out[log] = v
			}
			cancel()
			if a.probe != nil {
				for k, v := range a.probe.Status() {
					out[k] = v
				}
			}
			return out
		}
		ar := admin.Router(admin.Options{Token: a.cfg.Admin.Token, Ledger: a.admin, Status: a.engine.Status,
			Sinks: a.sinkNames(), Metrics: a.metrics, Replay: a.replay, Backfill: bf, Extra: extra, Log: a.log})
		servers = append(servers, a.server(a.cfg.Admin.Listen, ar, a.adminTLS))
	}

	engineCtx, stopEngine := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Add(4)
	go func() { defer bg.Done(); a.audit.run(engineCtx) }()
	// The listeners open without waiting for the re-projection check: after a mapping change
	// it queues every live row of the table, minutes for a large ledger, and webhooks refused
	// meanwhile would be lost (Appwrite never retries, and disables a webhook after 10
	// failures). Delivery starts after it, so a sink seen for the first time is registered by
	// the check (and gets the whole log) rather than by delivery (and a re-projection too).
	go func() {
		defer bg.Done()
		if err := a.reproject(engineCtx); err != nil && engineCtx.Err() == nil {
			a.log.WithError(err).Warn("re-projection check failed; will not re-sync changed mappings this run")
		}
		if engineCtx.Err() == nil {
			a.engine.Run(engineCtx)
		}
	}()
	go func() { defer bg.Done(); a.sweep(engineCtx) }()
	if a.history != nil {
		bg.Add(1)
		go func() { defer bg.Done(); a.history.Run(engineCtx) }()
	}
	go func() { defer bg.Done(); a.gauges(engineCtx) }()
	if a.fanout != nil {
		bg.Add(1)
		go func() { defer bg.Done(); a.fanout.Run(engineCtx) }()
	}
	// The spool's drainer stops after the listeners closed (no request appends any more); the
	// spool is then drained once more and closed, before the recorder.
	outageCtx, stopOutage := context.WithCancel(context.Background())
	outageDone := make(chan struct{})
	go func() { defer close(outageDone); a.outage.Run(outageCtx) }()
	if a.backfill != nil {
		bg.Add(3)
		go func() { defer bg.Done(); a.backfill.Run(engineCtx) }()
		go func() { defer bg.Done(); a.schedule.Run(engineCtx) }()
		go func() {
			defer bg.Done()
			if a.probe != nil {
				a.probe.Run(engineCtx)
			}
		}()
	}
	bg.Add(1) // the activity line at info (summary.go)
	go func() { defer bg.Done(); newSummarizer(a.metrics.Registry, a.log).run(engineCtx, summaryEvery) }()

	errc := make(chan error, len(servers))
	for _, s := range servers {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			stopOutage()
			<-outageDone
			a.outage.Close(a.cfg.Server.ShutdownTimeout)
			stopEngine()
			bg.Wait()
			return fmt.Errorf("listening on %s: %w", s.Addr, err)
		}
		a.log.WithFields(logrus.Fields{"addr": ln.Addr().String(), "tls": s.TLSConfig != nil}).Info("listening")
		go func(s *http.Server) {
			var err error
			if s.TLSConfig != nil {
				err = s.ServeTLS(ln, "", "") // the certificate comes from TLSConfig.GetCertificate
			} else {
				err = s.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(s)
	}
	var runErr error
	select {
	case <-ctx.Done():
		a.drain(servers, hardStop(ctx))
	case runErr = <-errc:
		a.log.WithError(runErr).Error("listener failed; shutting down")
	}
	a.shutdown(servers, hardStop(ctx))
	stopOutage()
	<-outageDone
	a.outage.Close(a.cfg.Server.ShutdownTimeout)
	a.recorder.Close()
	a.audit.close()
	stopEngine()
	bg.Wait()
	a.log.Info("stopped")
	return runErr
}

// drain runs between the stop signal and closing the listeners: /readyz answers 503, so load
// balancers take this replica out of rotation, while webhooks are still taken and recorded for
// server.drain_delay. Closing the listener at once would refuse the requests the balancer
// still sends until its next probe: Appwrite never retries them. Keep-alives end, so clients
// with a pooled connection reconnect through the balancer. A hard stop (the second signal)
// ends the wait.
func (a *app) drain(servers []*http.Server, hard <-chan struct{}) {
	a.draining.Store(true)
	a.metrics.Draining.Set(1)
	delay := a.cfg.Server.DrainDelay
	a.log.WithField("drain_delay", delay.String()).Info("shutting down: /readyz answers 503; still taking webhooks until the drain delay ends (a second signal stops at once)")
	for _, s := range servers {
		s.SetKeepAlivesEnabled(false)
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-hard:
		a.log.Warn("second signal: stopping at once")
	}
}

// shutdown closes the listeners and waits for in-flight requests (server.shutdown_timeout),
// or closes every connection at once on a hard stop.
func (a *app) shutdown(servers []*http.Server, hard <-chan struct{}) {
	select {
	case <-hard:
		for _, s := range servers {
			_ = s.Close()
		}
		return
	default:
	}
	a.log.Info("closing the listeners: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.Server.ShutdownTimeout)
	defer cancel()
	go func() {
		select {
		case <-hard:
			a.log.Warn("second signal: closing every connection")
			cancel()
		case <-sctx.Done():
		}
	}()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(sctx); err != nil {
				a.log.WithError(err).Warn("in-flight requests did not finish within server.shutdown_timeout")
				_ = s.Close()
			}
		}()
	}
	wg.Wait()
}

// publicRouter is the webhook listener's router: health, readiness and the webhook routes.
func (a *app) publicRouter() (*gin.Engine, error) {
	pub := gin.New()
	// A redirect (< 400) counts as delivered for Appwrite, which never follows it: never redirect.
	pub.RedirectTrailingSlash = false
	pub.RedirectFixedPath = false
	// The client IP (the rate limit's key) is the TCP peer unless the peer is one of
	// limits.trusted_proxies: gin would otherwise believe X-Forwarded-For from anyone.
	if err := pub.SetTrustedProxies(a.cfg.Limits.TrustedProxies); err != nil {
		return nil, fmt.Errorf("limits.trusted_proxies: %w", err)
	}
	pub.Use(gin.Recovery())
	pub.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	readyz := &readiness{log: a.log}
	pub.GET("/readyz", func(c *gin.Context) {
		if reason := readyz.report(a.ready(c.Request.Context())); reason != "" {
			c.JSON(http.StatusServiceUnavailable, gin.H{"ready": false, "reason": reason})
			return
		}
		c.JSON(http.StatusOK, gin.H{"ready": true})
	})
	a.handler.Routes(pub)
	pub.NoRoute(func(c *gin.Context) {
		c.JSON(http.StatusNotFound, gin.H{"error": "no webhook is configured at this path", "path": c.Request.URL.Path})
	})
	return pub, nil
}

func (a *app) server(addr string, h http.Handler, tlsCfg *tls.Config) *http.Server {
	return &http.Server{Addr: addr, Handler: h, TLSConfig: tlsCfg, ErrorLog: stdlog.New(serverErrorLog{a.log}, "", 0),
		ReadHeaderTimeout: a.cfg.Server.ReadHeaderTimeout, ReadTimeout: a.cfg.Server.ReadTimeout,
		WriteTimeout: a.cfg.Server.WriteTimeout, IdleTimeout: a.cfg.Server.IdleTimeout,
		MaxHeaderBytes: a.cfg.Limits.MaxHeaderBytes}
}

// serverErrorLog puts net/http's own messages in the service log. TLS handshake failures
// (scanners, plain HTTP on an HTTPS port) are routine on a public listener: debug level.
type serverErrorLog struct{ log *logrus.Entry }

func (w serverErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		w.log.Debug(msg)
	} else {
		w.log.Warn(msg)
	}
	return len(p), nil
}

// gauges keeps the pending, lag, dead-letter and quarantine gauges current between
// /admin/status calls, so alerts on /metrics see a stuck sink without anyone asking.
func (a *app) gauges(ctx context.Context) {
	periodic.Now(ctx, gaugeEvery, func() bool {
		qctx, cancel := context.WithTimeout(ctx, gaugeEvery)
		counts, quarantined, err := a.admin.SinkCounts(qctx, a.sinkNames())
		cancel()
		if err == nil {
			for name, n := range counts {
				a.metrics.SetQueue(name, n.Pending, n.DeadLetter, n.LagSeconds)
			}
			a.metrics.Quarantine.Set(float64(quarantined))
			a.fanoutGauge(ctx)
			qctx, cancel := context.WithTimeout(ctx, gaugeEvery)
			a.logBacklogs(qctx)
			cancel()
		} else if ctx.Err() == nil {
			a.log.WithError(err).Debug("refreshing queue gauges failed")
		}
		return true
	})
}

func (a *app) sweep(ctx context.Context) {
	quarantine := admin.QuarantineSweeper{Ledger: a.admin, Retention: a.cfg.Quarantine.Retention,
		MaxRows: a.cfg.Quarantine.MaxRows, Metrics: a.metrics, Log: a.log}
	periodic.Now(ctx, sweepEvery, func() bool {
		n, err := a.admin.SweepTombstones(ctx, a.cfg.State.TombstoneRetention)
		if err != nil && ctx.Err() == nil {
			a.log.WithError(err).Warn("sweeping tombstones failed")
		} else if n > 0 {
			a.metrics.TombstonesSwept.Add(float64(n))
			a.log.WithField("rows", n).Info("swept delete tombstones past retention")
		}
		if err := quarantine.Sweep(ctx); err != nil && ctx.Err() == nil {
			a.log.WithError(err).Warn("sweeping the quarantine failed")
		}
		a.sweepHistory(ctx)
		return true
	})
}

// newOutage builds the spool and the repair list (connector/outage).
func (a *app) newOutage() *outage.Guard {
	tables := make([]connector.TableKey, 0, len(a.cfg.Mapping.Tables))
	for _, t := range a.cfg.Mapping.Tables {
		tables = append(tables, t.Key())
	}
	return outage.New(outage.Options{Dir: a.cfg.State.SpoolDir, MaxBytes: a.cfg.State.SpoolMaxBytes,
		MaxBodyBytes: a.cfg.Limits.MaxBodyBytes, State: a.state, Recorder: a.recorder, Admin: a.admin,
		Backfill: a.backfill, Tables: tables, Metrics: a.metrics, Log: a.log})
}

func (a *app) close() {
	for _, s := range a.sinks {
		_ = s.Close()
	}
	if a.wh != nil && a.wh != a.state {
		a.wh.Close()
	}
	if a.logPool != nil {
		a.logPool.Close()
	}
	if a.state != nil {
		a.state.Close()
	}
}

// buildBackfill creates the backfill manager, the reconcile schedule and the webhook probe
// when appwrite.project and appwrite.api_key are set.
func (a *app) buildBackfill() error {
	c := a.cfg
	if c.Appwrite.Project == "" || c.Appwrite.APIKey == "" {
		return nil
	}
	client, err := appwrite.New(appwrite.Options{Endpoint: c.Appwrite.Endpoint, Project: c.Appwrite.Project,
		APIKey: c.Appwrite.APIKey, PageSize: c.Appwrite.PageSize, Logger: a.log})
	if err != nil {
		return err
	}
	a.backfill, err = backfill.New(a.state, backfill.Options{Client: client, Recorder: a.recorder, Mapping: c.Mapping, ParallelPages: c.Appwrite.ParallelPages,
		Lease: c.Reconcile.Lease, Skew: c.Reconcile.Skew, Metrics: a.metrics, Log: a.log})
	if err != nil {
		return err
	}
	a.schedule = backfill.NewScheduler(a.backfill, backfill.ScheduleOptions{
		IncrementalEvery: c.Reconcile.IncrementalEvery, FullEvery: c.Reconcile.FullEvery})
	if len(c.Reconcile.WebhookIDs) > 0 {
		a.probe = backfill.NewProbe(backfill.ProbeOptions{Client: client, IDs: c.Reconcile.WebhookIDs,
			Every: c.Reconcile.ProbeEvery, Metrics: a.metrics, Log: a.log, Reenable: c.Reconcile.ReenableWebhooks,
			// a.outage is built after the manager it queues repairs with.
			Reenabled: func(ctx context.Context, id string, since time.Time) {
				a.outage.WebhookReenabled(ctx, id, since)
			}})
	}
	return nil
}
