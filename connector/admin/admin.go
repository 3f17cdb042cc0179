// Package admin serves the admin API (status, dead letters, quarantine, backfill jobs) and
// /metrics on the admin listener. Every /admin/* route needs `Authorization: Bearer <token>`,
// compared in constant time. Handlers are thin adapters over the ledger's plain functions.
package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
)

// Backfill is the job API implemented by package backfill.
type Backfill interface {
	// Start queues a job; table is "database/table", mode "full" or "incremental".
	// allowMassDelete lets a full job delete most of the table's rows.
	Start(ctx context.Context, table, mode string, allowMassDelete bool) (id string, err error)
	Get(ctx context.Context, id string) (any, bool, error)
	List(ctx context.Context, limit int) (any, error)
	Cancel(ctx context.Context, id string) (bool, error)
}

// ErrBadRequest marks a Backfill error caused by the request (answered 400).
var ErrBadRequest = errors.New("bad request")

// ReplayResult reports one quarantined request's replay.
type ReplayResult struct {
	ID     int64  `json:"id"`
	OK     bool   `json:"ok"`
	Result string `json:"result"`
}

// Options wires the admin API.
type Options struct {
	Token   string
	Ledger  *ledger.Admin
	Status  func() map[string]ledger.SinkStatus
	Sinks   []string
	Metrics *metrics.Metrics
	// Replay re-runs one quarantined request through decode + record.
	Replay   func(ctx context.Context, q ledger.Quarantined) (ok bool, result string)
	Backfill Backfill
	Extra    func() map[string]any // more status (webhook probe), may be nil
	Log      *logrus.Entry
}

// Router builds the admin HTTP handler.
func Router(o Options) *gin.Engine {
	r := gin.New()
	r.Use(gin.Recovery())
	if o.Metrics != nil {
		r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{})))
	}
	a := r.Group("/admin", bearer(o.Token))
	a.GET("/status", o.status)
	a.GET("/dead-letter", o.deadLetters)
	a.POST("/dead-letter/replay", o.replayDeadLetters)
	a.GET("/quarantine", o.listQuarantine)
	a.POST("/quarantine/replay", o.replayQuarantine)
	a.POST("/backfill", o.startBackfill)
	a.GET("/backfill", o.listBackfill)
	a.GET("/backfill/:id", o.getBackfill)
	a.DELETE("/backfill/:id", o.cancelBackfill)
	// Profiling for operators, behind the same token.
	d := r.Group("/debug/pprof", bearer(o.Token))
	d.GET("/", gin.WrapF(pprof.Index))
	d.GET("/cmdline", gin.WrapF(pprof.Cmdline))
	d.GET("/profile", gin.WrapF(pprof.Profile))
	d.GET("/symbol", gin.WrapF(pprof.Symbol))
	d.GET("/trace", gin.WrapF(pprof.Trace))
	d.GET("/:name", func(c *gin.Context) { pprof.Handler(c.Param("name")).ServeHTTP(c.Writer, c.Request) })
	r.NoRoute(func(c *gin.Context) { c.JSON(http.StatusNotFound, gin.H{"error": "no such admin route"}) })
	return r
}

func bearer(token string) gin.HandlerFunc {
	want := []byte("Bearer " + token)
	return func(c *gin.Context) {
		got := []byte(c.GetHeader("Authorization"))
		if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			c.Header("WWW-Authenticate", `Bearer realm="appwrite-sync admin"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "missing or wrong bearer token",
				"hint": "send Authorization: Bearer <admin.token>"})
			return
		}
		c.Next()
	}
}

func unavailable(c *gin.Context, err error) {
	c.JSON(http.StatusServiceUnavailable, gin.H{"error": "state store unavailable", "detail": err.Error()})
}

func (o Options) status(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 10*time.Second)
	defer cancel()
	counts, quarantined, tables, err := o.Ledger.Counts(ctx, o.Sinks)
	if err != nil {
		// Still show what does not come from the state store: during its outage, the spool
		// taking the webhooks.
		out := gin.H{"error": "state store unavailable", "detail": err.Error()}
		if o.Extra != nil {
			for k, v := range o.Extra() {
				out[k] = v
			}
		}
		c.JSON(http.StatusServiceUnavailable, out)
		return
	}
	var live map[string]ledger.SinkStatus
	if o.Status != nil {
		live = o.Status()
	}
	sinks := gin.H{}
	for name, n := range counts {
		s := gin.H{"pending": n.Pending, "dead_letter": n.DeadLetter, "lag_seconds": n.LagSeconds}
		if st, ok := live[name]; ok {
			s["state"], s["since"] = st.State, st.Since
			if st.Reason != "" {
				s["reason"] = st.Reason
			}
		}
		sinks[name] = s
		if o.Metrics != nil {
			o.Metrics.SetQueue(name, n.Pending, n.DeadLetter, n.LagSeconds)
		}
	}
	if o.Metrics != nil {
		o.Metrics.Quarantine.Set(float64(quarantined))
	}
	out := gin.H{"sinks": sinks, "quarantined": quarantined, "tables": tables}
	if o.Extra != nil {
		for k, v := range o.Extra() {
			out[k] = v
		}
	}
	c.JSON(http.StatusOK, out)
}

func limitParam(c *gin.Context) int {
	n, err := strconv.Atoi(c.DefaultQuery("limit", "100"))
	if err != nil || n <= 0 {
		return 100
	}
	return min(n, 10000)
}

// deadLetters answers one page: `next`, when present, is the `after` of the following one.
func (o Options) deadLetters(c *gin.Context) {
	ds, next, err := o.Ledger.DeadLetterPage(c.Request.Context(), ledger.DeadLetterQuery{Sink: c.Query("sink"),
		Table: c.Query("table"), After: c.Query("after"), Limit: limitParam(c)})
	if errors.Is(err, ledger.ErrBadCursor) {
		c.JSON(http.StatusBadRequest, gin.H{"error": "after: " + err.Error(), "hint": "pass the `next` of the previous answer, or omit after"})
		return
	}
	if err != nil {
		unavailable(c, err)
		return
	}
	if ds == nil {
		ds = []ledger.DeadLetter{}
	}
	out := gin.H{"dead_letter": ds}
	if next != "" {
		out["next"] = next
	}
	c.JSON(http.StatusOK, out)
}

type replayReq struct {
	Sink  string `json:"sink"`
	Table string `json:"table"`
	RowID string `json:"row_id"`
	ID    int64  `json:"id"`
}

func bindOptional(c *gin.Context, v any) bool {
	if c.Request.ContentLength == 0 {
		return true
	}
	if err := c.ShouldBindJSON(v); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "body must be a JSON object", "detail": err.Error()})
		return false
	}
	return true
}

func (o Options) replayDeadLetters(c *gin.Context) {
	var req replayReq
	if !bindOptional(c, &req) {
		return
	}
	n, err := o.Ledger.ReplayDeadLetters(c.Request.Context(), req.Sink, req.Table, req.RowID)
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"replayed": n})
}

// listQuarantine answers one page in arrival order: `next`, when present, is the `after` of
// the following one (the last id of this page).
func (o Options) listQuarantine(c *gin.Context) {
	var after int64
	if s := c.Query("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			c.JSON(http.StatusBadRequest, gin.H{"error": "after must be the id the previous answer gave as next"})
			return
		}
		after = n
	}
	qs, next, err := o.Ledger.QuarantinePage(c.Request.Context(), ledger.QuarantineQuery{IncludeReplayed: c.Query("all") == "true",
		WithBody: c.Query("body") == "true", After: after, Limit: limitParam(c)})
	if err != nil {
		unavailable(c, err)
		return
	}
	if qs == nil {
		qs = []ledger.Quarantined{}
	}
	out := gin.H{"quarantine": qs}
	if next != 0 {
		out["next"] = strconv.FormatInt(next, 10)
	}
	c.JSON(http.StatusOK, out)
}

// replayPage is how many quarantined requests (bodies included) a replay of all holds at once.
const replayPage = 100

func (o Options) replayQuarantine(c *gin.Context) {
	var req replayReq
	if !bindOptional(c, &req) {
		return
	}
	ctx := c.Request.Context()
	results := []ReplayResult{}
	replayed := 0
	replay := func(q ledger.Quarantined) error {
		ok, msg := o.Replay(ctx, q)
		if err := o.Ledger.MarkReplayed(ctx, q.ID, ok, msg); err != nil {
			return err
		}
		if ok {
			replayed++
		}
		results = append(results, ReplayResult{ID: q.ID, OK: ok, Result: msg})
		return nil
	}
	if req.ID != 0 {
		q, found, err := o.Ledger.QuarantinedRequest(ctx, req.ID)
		if err != nil {
			unavailable(c, err)
			return
		}
		if !found || q.ReplayedAt != nil {
			c.JSON(http.StatusNotFound, gin.H{"error": "no quarantined request with this id waits for a replay (unknown, removed by the sweep, or already replayed)", "id": req.ID})
			return
		}
		if err := replay(q); err != nil {
			unavailable(c, err)
			return
		}
	} else {
		// Page by page: the bodies of the whole quarantine need not fit in memory.
		for after := int64(0); ; {
			qs, next, err := o.Ledger.QuarantinePage(ctx, ledger.QuarantineQuery{WithBody: true, After: after, Limit: replayPage})
			if err != nil {
				unavailable(c, err)
				return
			}
			for _, q := range qs {
				if err := replay(q); err != nil {
					unavailable(c, err)
					return
				}
			}
			if next == 0 {
				break
			}
			after = next
		}
	}
	c.JSON(http.StatusOK, gin.H{"replayed": replayed, "failed": len(results) - replayed, "results": results})
}

func (o Options) noBackfill(c *gin.Context) bool {
	if o.Backfill == nil {
		c.JSON(http.StatusNotImplemented, gin.H{"error": "backfill is not configured: set appwrite.endpoint, appwrite.project and appwrite.api_key"})
		return true
	}
	return false
}

func (o Options) startBackfill(c *gin.Context) {
	if o.noBackfill(c) {
		return
	}
	var req struct {
		Table           string `json:"table"`
		Mode            string `json:"mode"`
		AllowMassDelete bool   `json:"allow_mass_delete"`
	}
	if err := c.ShouldBindJSON(&req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"table": "database/table", "mode": "full"|"incremental", "allow_mass_delete": false}`})
		return
	}
	if req.Mode == "" {
		req.Mode = "full"
	}
	id, err := o.Backfill.Start(c.Request.Context(), req.Table, req.Mode, req.AllowMassDelete)
	if err != nil {
		if errors.Is(err, ErrBadRequest) {
			c.JSON(http.StatusBadRequest, gin.H{"error": strings.TrimSuffix(err.Error(), ": "+ErrBadRequest.Error())})
			return
		}
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"id": id})
}

func (o Options) listBackfill(c *gin.Context) {
	if o.noBackfill(c) {
		return
	}
	v, err := o.Backfill.List(c.Request.Context(), limitParam(c))
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"jobs": v})
}

func (o Options) getBackfill(c *gin.Context) {
	if o.noBackfill(c) {
		return
	}
	v, ok, err := o.Backfill.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		unavailable(c, err)
		return
	}
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such backfill job"})
		return
	}
	c.JSON(http.StatusOK, v)
}

func (o Options) cancelBackfill(c *gin.Context) {
	if o.noBackfill(c) {
		return
	}
	ok, err := o.Backfill.Cancel(c.Request.Context(), c.Param("id"))
	if err != nil {
		unavailable(c, err)
		return
	}
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such backfill job, or it already ended"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"canceled": true})
}
