package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// Appwrite delivery headers.
const (
	HeaderSignature = connector.HeaderSignature
	HeaderEvents    = connector.HeaderEvents
	HeaderID        = connector.HeaderID
	HeaderName      = connector.HeaderName
	HeaderProjectID = connector.HeaderProjectID
	HeaderUserID    = connector.HeaderUserID
)

// MaxBodyBytesDefault is the body limit when Options.MaxBodyBytes is not set (5 MiB, the
// default of limits.max_body_bytes).
const MaxBodyBytesDefault int64 = 5 << 20

// RetryAfterSeconds is sent as Retry-After with every 503. Appwrite itself never retries; the
// header is for humans and for replays through other tools.
const RetryAfterSeconds = 5

// Endpoint is one Appwrite webhook pointing at this service.
type Endpoint struct {
	// Name identifies the webhook in answers, logs and the quarantine ("webhooks[0]").
	// Default: "webhooks[i]" for the i-th endpoint.
	Name string
	// URL is the webhook URL exactly as configured in Appwrite (the signature covers it).
	URL string
	// Path is the path the requests arrive on, written as in a URL (%-escapes allowed; see
	// RoutePath). Default: the path of URL. NewHandler replaces it with the decoded route.
	Path string
	// Verifier checks signatures for URL. Required.
	Verifier *Verifier
	// BasicUser and BasicPass, when set (both), are required as HTTP Basic credentials. Both
	// empty means no basic auth.
	BasicUser, BasicPass string
}

func (e *Endpoint) basicAuth() bool { return e.BasicUser != "" || e.BasicPass != "" }

// String describes the endpoint without its password, so that printing it never leaks it.
func (e Endpoint) String() string {
	return fmt.Sprintf("webhook.Endpoint{name: %q, path: %q, url: %q, basic_auth: %t}",
		e.Name, e.Path, e.URL, e.basicAuth())
}

// Options configures a Handler.
type Options struct {
	// Endpoints are the configured webhooks; at least one, with distinct paths.
	Endpoints []Endpoint
	// MaxBodyBytes is the largest body accepted, in bytes; above it the answer is 413.
	// Default MaxBodyBytesDefault.
	MaxBodyBytes int64
	// Recorder stores accepted changes and quarantined requests. Required; use NotStored
	// until a state store exists.
	Recorder Recorder
	// Mapped reports whether a table is in the mapping; changes of other tables are
	// acknowledged and ignored. Default: every table is mapped.
	Mapped func(connector.TableKey) bool
	// Log receives one line per request. Default: the standard logrus logger.
	Log *logrus.Entry
	// Observe, if set, is called with every request's Result (metrics).
	Observe func(Result)
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// RateLimit bounds the requests per client IP (gin's ClientIP) on the webhook routes.
	// Default: off.
	RateLimit RateLimit
	// BodyBudget bounds the bytes of request bodies being read at once over HTTP (budget.go
	// says how it is shared between sources). 0: no bound.
	BodyBudget int64
	// BodyWait is how long a request waits for room in BodyBudget before 503. Default
	// BodyWaitDefault.
	BodyWait time.Duration
	// Audit, if set, records the deliveries it selects in the audit log first (audit.go).
	Audit Auditor
}

// Handler runs the ingest pipeline. The order fails closed: cap the body, check basic auth,
// verify the signature over the raw bytes, decode, then store durably before answering 2xx.
type Handler struct {
	endpoints []*Endpoint
	maxBody   int64
	rec       Recorder
	mapped    func(connector.TableKey) bool
	log       *logrus.Entry
	observe   func(Result)
	now       func() time.Time
	limiter   *limiter // nil: no rate limit
	budget    *budget  // nil: no intake budget
	auditor   Auditor  // nil: no audit log
}

// NewHandler validates opts, fills defaults and returns a Handler.
func NewHandler(opts Options) (*Handler, error) {
	var errs []error
	if len(opts.Endpoints) == 0 {
		errs = append(errs, errors.New("webhooks: no endpoint configured; add at least one entry under webhooks"))
	}
	if opts.Recorder == nil {
		errs = append(errs, errors.New("webhook handler: no Recorder (use webhook.NotStored{} until a state store exists)"))
	}
	if opts.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("limits.max_body_bytes: must be positive, got %d", opts.MaxBodyBytes))
	}
	h := &Handler{
		maxBody: opts.MaxBodyBytes,
		rec:     opts.Recorder,
		mapped:  opts.Mapped,
		log:     opts.Log,
		observe: opts.Observe,
		now:     opts.Now,
		auditor: opts.Audit,
	}
	if h.maxBody == 0 {
		h.maxBody = MaxBodyBytesDefault
	}
	if h.now == nil {
		h.now = time.Now
	}
	var err error
	if h.limiter, err = newLimiter(opts.RateLimit); err != nil {
		errs = append(errs, err)
	}
	switch {
	case opts.BodyBudget < 0:
		errs = append(errs, fmt.Errorf("limits.body_budget_bytes: must be positive, got %d", opts.BodyBudget))
	case opts.BodyBudget > 0 && opts.BodyBudget < h.maxBody:
		errs = append(errs, fmt.Errorf("limits.body_budget_bytes (%d) is smaller than limits.max_body_bytes (%d): no body of the largest size could ever be read", opts.BodyBudget, h.maxBody))
	case opts.BodyBudget > 0:
		wait := opts.BodyWait
		if wait <= 0 {
			wait = BodyWaitDefault
		}
		h.budget = newBudget(opts.BodyBudget, h.maxBody, wait, h.now)
	}
	if h.mapped == nil {
		h.mapped = func(connector.TableKey) bool { return true }
	}
	if h.log == nil {
		h.log = logrus.NewEntry(logrus.StandardLogger())
	}
	paths := map[string]string{}
	for i := range opts.Endpoints {
		ep := opts.Endpoints[i] // a copy: later edits by the caller do not change the routes
		if ep.Name == "" {
			ep.Name = fmt.Sprintf("webhooks[%d]", i)
		}
		if err := fillEndpoint(&ep); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep.Name, err))
			continue
		}
		if other, dup := paths[ep.Path]; dup {
			errs = append(errs, fmt.Errorf("%s: path %q is already used by %s; give each webhook its own path", ep.Name, ep.Path, other))
			continue
		}
		paths[ep.Path] = ep.Name
		h.endpoints = append(h.endpoints, &ep)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return h, nil
}

// fillEndpoint defaults and checks one endpoint.
func fillEndpoint(ep *Endpoint) error {
	if ep.Verifier == nil {
		return errors.New("no signature verifier: signing_keys are required")
	}
	if ep.URL == "" {
		ep.URL = ep.Verifier.URL()
	}
	if ep.Path == "" {
		u, err := url.Parse(ep.URL)
		if err != nil {
			return fmt.Errorf("url %q: %v; or set path explicitly", ep.URL, err)
		}
		ep.Path = u.EscapedPath()
		if ep.Path == "" {
			ep.Path = "/"
		}
	}
	route, err := RoutePath(ep.Path)
	if err != nil {
		return err
	}
	ep.Path = route
	if (ep.BasicUser == "") != (ep.BasicPass == "") {
		// Appwrite sends Authorization only when both are set: half a pair rejects everything.
		return errors.New("basic_auth needs both username and password (Appwrite sends credentials only when both are set), or neither")
	}
	return nil
}

// Handle runs the pipeline for a request that arrived on endpoint with the given headers and
// raw body, and returns the status and JSON body to answer plus a Result. It logs the request
// and calls Observe. A nil endpoint answers 404.
func (h *Handler) Handle(ctx context.Context, endpoint *Endpoint, header http.Header, body []byte) (status int, response any, res Result) {
	path := ""
	if endpoint != nil {
		path = endpoint.Path
	}
	return h.handle(ctx, endpoint, path, header, body, h.now(), false)
}

// handle runs the pipeline and reports the result. basicAuthChecked says the caller (serveHTTP,
// from the headers, before reading the body) has already checked the endpoint's basic auth.
func (h *Handler) handle(ctx context.Context, ep *Endpoint, reqPath string, header http.Header, body []byte, start time.Time, basicAuthChecked bool) (int, any, Result) {
	res := Result{}
	if ep != nil {
		res.Webhook = ep.Name
	}
	status, resp := h.pipeline(ctx, ep, reqPath, header, body, start, basicAuthChecked, &res)
	res.Status = status
	res.Latency = h.now().Sub(start)
	h.report(res)
	return status, resp, res
}

// pipeline is the ordered decision; every return sets res.Outcome.
func (h *Handler) pipeline(ctx context.Context, ep *Endpoint, reqPath string, header http.Header, body []byte, start time.Time,
	basicAuthChecked bool, res *Result) (int, gin.H) {
	if ep == nil {
		res.Outcome = OutcomeNotFound
		return http.StatusNotFound, gin.H{"error": "no webhook is configured for this path"}
	}
	if int64(len(body)) > h.maxBody {
		return h.tooLarge(ep, res)
	}
	if !basicAuthChecked {
		if status, resp, failed := h.basicAuthFailed(ep, header, res); failed {
			return status, resp
		}
	}
	if err := ep.Verifier.Verify(header.Get(HeaderSignature), body); err != nil {
		res.Outcome, res.Reason = OutcomeUnauthorized, err.Error()
		return http.StatusUnauthorized, gin.H{
			"error":   err.Error(),
			"webhook": ep.Name,
			"hint":    signatureHint(ep, reqPath),
		}
	}

	// Authenticated from here on: the headers and body are Appwrite's.
	res.verified = true
	events := header.Get(HeaderEvents)
	res.Event = FirstEvent(events)
	audited := h.audited(events)
	ch, err := Decode(events, body)
	if errors.Is(err, ErrNotRowEvent) {
		if audited {
			return h.auditedOnly(ctx, ep, header, body, start, res)
		}
		res.Outcome, res.Reason = OutcomeIgnored, fmt.Sprintf("%s is not a row event", res.Event)
		return http.StatusOK, gin.H{"ignored": true, "reason": res.Reason}
	}
	if err != nil {
		if audited { // the entry first: a quarantined delivery is audited too
			if status, resp := h.auditAlone(ctx, ep, header, body, start, res); status != 0 {
				return status, resp
			}
		}
		var de *DecodeError
		if errors.As(err, &de) {
			return h.quarantine(ctx, ep, header, body, start, de.Reason, res)
		}
		// Decode returns nothing else; fail closed if that ever changes
		return h.quarantine(ctx, ep, header, body, start, err.Error(), res)
	}
	ch.Actor, ch.Source = header.Get(HeaderUserID), connector.SourceWebhook
	res.Table, res.RowID = ch.Key.String(), ch.RowID
	if !h.mapped(ch.Key) {
		if audited {
			return h.auditedOnly(ctx, ep, header, body, start, res)
		}
		res.Outcome, res.Reason = OutcomeIgnored, fmt.Sprintf("table %s is not mapped", res.Table)
		return http.StatusOK, gin.H{"ignored": true, "reason": res.Reason}
	}
	if audited { // recorded with the change, in its transaction
		ch.Audit = h.auditor.Entry(header, body, start)
	}
	rec, err := h.rec.Record(ctx, ch)
	if err != nil {
		if connector.IsPermanent(err) { // the change itself, not the state store: keep it for a look
			if audited { // its entry was not committed with it
				if status, resp := h.auditAlone(ctx, ep, header, body, start, res); status != 0 {
					return status, resp
				}
			}
			return h.quarantine(ctx, ep, header, body, start, err.Error(), res)
		}
		if audited {
			return h.auditUnavailable(ep, err, res)
		}
		res.Outcome, res.Reason, res.err = OutcomeUnavailable, "recording the change failed", err
		return http.StatusServiceUnavailable, gin.H{
			"error":   "state store unavailable; change not stored",
			"webhook": ep.Name,
			"hint": "Appwrite does not retry deliveries: once the state store is back, appwrite-sync reconciles " + res.Table +
				" from this moment when the Appwrite API is configured (appwrite.project, appwrite.api_key); otherwise run a backfill " +
				"(mode incremental) of " + res.Table + " to catch up. Set state.spool_dir to take webhooks while the state store is down",
		}
	}
	res.Outcome, res.Recorded, res.Audited = OutcomeRecorded, rec, audited
	return http.StatusOK, answerRecorded[recordedIndex(rec)]
}

// auditedOnly records a selected delivery that is not a row change of a mapped table in the
// audit log alone, and answers it.
func (h *Handler) auditedOnly(ctx context.Context, ep *Endpoint, header http.Header, body []byte, start time.Time, res *Result) (int, gin.H) {
	if status, resp := h.auditAlone(ctx, ep, header, body, start, res); status != 0 {
		return status, resp
	}
	res.Outcome = OutcomeAudited
	return http.StatusOK, answerAudited
}

// recordedIndex bounds r for indexing the pre-built answers.
func recordedIndex(r Recorded) int {
	if r < 0 || int(r) >= len(recordedNames) {
		return int(RecordedNew)
	}
	return int(r)
}

// basicAuthFailed checks the endpoint's basic auth, if it has one, from the headers alone.
func (h *Handler) basicAuthFailed(ep *Endpoint, header http.Header, res *Result) (int, gin.H, bool) {
	if !ep.basicAuth() || CheckBasicAuth(header.Get("Authorization"), ep.BasicUser, ep.BasicPass) {
		return 0, nil, false
	}
	res.Outcome, res.Reason = OutcomeUnauthorized, "basic auth missing or wrong"
	return http.StatusUnauthorized, gin.H{
		"error":   "missing or wrong HTTP basic auth credentials",
		"webhook": ep.Name,
		"hint": "this webhook requires HTTP basic auth: the HTTP user and password in the Appwrite " +
			"webhook's settings must equal basic_auth.username and basic_auth.password of " + ep.Name + " in appwrite-sync's config",
	}, true
}

// answerRecorded is the answer to a recorded change, per Recorded (shared: never modify them).
var answerRecorded = [len(recordedNames)]gin.H{
	RecordedNew:       {"recorded": true, "result": RecordedNew.String()},
	RecordedStale:     {"recorded": true, "result": RecordedStale.String()},
	RecordedDuplicate: {"recorded": true, "result": RecordedDuplicate.String()},
	RecordedSpooled:   {"recorded": true, "result": RecordedSpooled.String()},
}

func (h *Handler) tooLarge(ep *Endpoint, res *Result) (int, gin.H) {
	res.Outcome, res.Reason = OutcomeTooLarge, fmt.Sprintf("body over %d bytes", h.maxBody)
	return http.StatusRequestEntityTooLarge, gin.H{
		"error":   fmt.Sprintf("request body is larger than limits.max_body_bytes (%d bytes); nothing was stored", h.maxBody),
		"webhook": ep.Name,
		"limit":   h.maxBody,
	}
}

func (h *Handler) quarantine(ctx context.Context, ep *Endpoint, header http.Header, body []byte, received time.Time, reason string, res *Result) (int, gin.H) {
	q := Quarantined{
		Webhook:    ep.Name,
		Reason:     reason,
		Headers:    make(map[string]string, len(quarantineHeaders)),
		Body:       body,
		ReceivedAt: received,
	}
	for _, k := range quarantineHeaders {
		if v := header.Get(k); v != "" {
			q.Headers[k] = v
		}
	}
	res.Reason = reason
	if err := h.rec.Quarantine(ctx, q); err != nil {
		res.Outcome, res.err = OutcomeUnavailable, err
		return http.StatusServiceUnavailable, gin.H{
			"error":   "state store unavailable; request not stored (it could not be decoded and quarantining it failed)",
			"webhook": ep.Name,
			"reason":  reason,
		}
	}
	res.Outcome = OutcomeQuarantined
	return http.StatusAccepted, gin.H{"quarantined": true, "reason": reason}
}

// signatureHint helps whoever reads a 401 in Appwrite's webhook logs. Almost every signature
// failure is a URL or key mismatch, never a tampered request, so it says what must match.
func signatureHint(ep *Endpoint, reqPath string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "this request matched webhook %s (path %s). ", ep.Name, ep.Path)
	b.WriteString("The signature covers the webhook URL: the url of this webhook in appwrite-sync's config " +
		"must equal the URL in Appwrite's webhook settings character for character (scheme, host, port, " +
		"path, query and trailing slash), and signing_keys must contain the webhook's current signature key. " +
		"Behind a reverse proxy what counts is the URL string configured in Appwrite, not the URL the proxy forwards to.")
	if reqPath != "" && reqPath != ep.Path {
		fmt.Fprintf(&b, " This request arrived at %s, not %s: the URLs probably differ by a trailing slash.", reqPath, ep.Path)
	}
	return b.String()
}
