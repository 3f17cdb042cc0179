package webhook

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Register builds a Handler from opts and adds one POST route per endpoint to r. It fails on
// invalid options, including two endpoints with the same path.
//
// Each endpoint is also routed on its path with the trailing slash toggled ("/hook" and
// "/hook/"). Otherwise gin would answer a request for the other spelling with a redirect,
// which Appwrite counts as a successful delivery (any status < 400) and never follows: the
// event would be silently lost. Routed here, it gets a 401 explaining the mismatch instead.
func Register(r gin.IRoutes, opts Options) error {
	h, err := NewHandler(opts)
	if err != nil {
		return err
	}
	h.Routes(r)
	return nil
}

// Routes adds the handler's POST routes to r (see Register).
func (h *Handler) Routes(r gin.IRoutes) {
	taken := map[string]bool{}
	for _, ep := range h.endpoints {
		taken[ep.Path] = true
	}
	for _, ep := range h.endpoints {
		r.POST(ginRoute(ep.Path), h.ginHandler(ep))
		if alt := toggleSlash(ep.Path); alt != "" && !taken[alt] {
			taken[alt] = true
			r.POST(ginRoute(alt), h.ginHandler(ep))
		}
	}
}

// toggleSlash returns path with its trailing slash added or removed ("" for "/").
func toggleSlash(path string) string {
	if path == "/" {
		return ""
	}
	if trimmed, ok := strings.CutSuffix(path, "/"); ok {
		return trimmed
	}
	return path + "/"
}

// ginHandler adapts the handler to one endpoint's route. Everything that can be decided from
// the headers is decided before a byte of the body is read (rate limit, announced size, basic
// auth); then the body's announced size is reserved in the intake budget, the body read as it
// arrives, the pipeline run and the answer written.
func (h *Handler) ginHandler(ep *Endpoint) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := h.now()
		// Before reading anything: a flood costs a map lookup per request.
		if h.limited(c, ep, start) {
			return
		}
		req := c.Request
		if req.Body == nil { // only in hand-built requests; the server always sets one
			req.Body = http.NoBody
		}
		status, resp, res := h.serveHTTP(c, ep, req, start)
		if res.Outcome == OutcomeRecorded { // the common answer, pre-rendered
			c.Data(status, jsonContentType, recordedBody[recordedIndex(res.Recorded)])
			return
		}
		if status == http.StatusUnauthorized && ep.basicAuth() {
			c.Header("WWW-Authenticate", `Basic realm="appwrite-sync", charset="UTF-8"`)
		}
		if status == http.StatusServiceUnavailable {
			c.Header("Retry-After", strconv.Itoa(RetryAfterSeconds))
		}
		c.JSON(status, resp)
	}
}

// serveHTTP decides one request that arrived over HTTP.
func (h *Handler) serveHTTP(c *gin.Context, ep *Endpoint, req *http.Request, start time.Time) (int, any, Result) {
	res := Result{Webhook: ep.Name}
	early := func(status int, resp any) (int, any, Result) {
		res.Status, res.Latency = status, h.now().Sub(start)
		h.report(res)
		return status, resp, res
	}
	// Refuse before reading when the client announces too much: nothing of it is needed.
	if req.ContentLength > h.maxBody {
		return early(h.tooLarge(ep, &res))
	}
	// Basic auth is in the headers: a wrong one costs no body.
	if status, resp, failed := h.basicAuthFailed(ep, req.Header, &res); failed {
		return early(status, resp)
	}
	var g grant // the zero grant, without a budget, releases nothing
	signed := false
	defer func() { g.release(signed) }()
	if h.budget != nil {
		source := sourceOf(c)
		size := req.ContentLength
		if size < 0 {
			size = h.maxBody // not announced (chunked): the most it may be
		}
		var err error
		if g, err = h.budget.acquire(req.Context(), source, size); err != nil {
			res.Outcome = OutcomeBusy
			res.Reason = fmt.Sprintf("source %s: no room for a %d-byte body in limits.body_budget_bytes within %s", source, size, h.budget.wait)
			return early(http.StatusServiceUnavailable, gin.H{
				"error":   "too many request bodies are being read at once; nothing was stored",
				"webhook": ep.Name,
				"hint": "sources that delivered validly signed webhooks recently are served from a reserved share; " +
					"if this is Appwrite, raise limits.body_budget_bytes (or memory_limit) and look for other clients flooding the listener",
			})
		}
	}
	body, err := readBody(req.Body, req.ContentLength, h.maxBody)
	if errors.Is(err, errBodyTooLarge) {
		return early(h.tooLarge(ep, &res))
	}
	if err != nil {
		res.Outcome, res.Reason = OutcomeBadRequest, "reading body: "+err.Error()
		return early(http.StatusBadRequest, gin.H{"error": "could not read the request body: " + err.Error(), "webhook": ep.Name})
	}
	status, resp, res := h.handle(req.Context(), ep, req.URL.Path, req.Header, body, start, true)
	signed = res.verified
	return status, resp, res
}

var errBodyTooLarge = errors.New("request body too large")

// recordedBody is the answer to a recorded change, per Recorded, exactly as c.JSON renders
// answerRecorded; writing it as is saves encoding a map per request (3% of the service's CPU
// under load).
var recordedBody = [len(recordedNames)][]byte{
	RecordedNew:       []byte(`{"recorded":true,"result":"new"}`),
	RecordedStale:     []byte(`{"recorded":true,"result":"stale"}`),
	RecordedDuplicate: []byte(`{"recorded":true,"result":"duplicate"}`),
	RecordedSpooled:   []byte(`{"recorded":true,"result":"spooled"}`),
}

const jsonContentType = "application/json; charset=utf-8"

// readBody reads at most limit bytes of r; one byte more is errBodyTooLarge. The buffer grows
// as bytes arrive, never ahead of them: a client that announces a large body and trickles it
// holds only what it sent (and at most twice that while the buffer grows). A known
// contentLength caps the growth, so a body that arrives whole ends in a buffer of its size.
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	buf := make([]byte, 0, min(readChunk, max(contentLength+1, 512)))
	lr := io.LimitReader(r, limit+1)
	for {
		if len(buf) == cap(buf) {
			size := int64(2 * cap(buf))
			if contentLength >= 0 && int64(len(buf)) <= contentLength {
				size = min(size, contentLength+1) // room for the read that reports EOF
			}
			size = min(size, limit+1)
			grown := make([]byte, len(buf), max(size, int64(len(buf))+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// sourceOf is the request's client IP as gin's ClientIP gives it: the TCP peer, or what a
// trusted proxy's X-Forwarded-For / X-Real-IP says. Without those headers ClientIP is the peer
// anyway, and c.RemoteIP gives it without parsing the address into a net.IP and formatting it
// back (two allocations per webhook).
func sourceOf(c *gin.Context) string {
	if h := c.Request.Header; h.Get("X-Forwarded-For") == "" && h.Get("X-Real-IP") == "" {
		return c.RemoteIP()
	}
	return c.ClientIP()
}

// readChunk is the first buffer for a body: large enough for most row webhooks at once.
const readChunk = 16 << 10
