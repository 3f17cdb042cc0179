package webhook

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

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

// ginHandler adapts the handler to one endpoint's route: read the body within the limit, run the
// pipeline, write the answer.
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
		var (
			status int
			resp   any
			res    Result
		)
		// Refuse before reading when the client announces too much: nothing of it is needed.
		if req.ContentLength > h.maxBody {
			res.Webhook = ep.Name
			status, resp = h.tooLarge(ep, &res)
			res.Status, res.Latency = status, h.now().Sub(start)
			h.report(res)
		} else if body, err := readBody(req.Body, req.ContentLength, h.maxBody); errors.Is(err, errBodyTooLarge) {
			res.Webhook = ep.Name
			status, resp = h.tooLarge(ep, &res)
			res.Status, res.Latency = status, h.now().Sub(start)
			h.report(res)
		} else if err != nil {
			res.Webhook, res.Outcome, res.Reason = ep.Name, OutcomeBadRequest, "reading body: "+err.Error()
			status, resp = http.StatusBadRequest, gin.H{"error": "could not read the request body: " + err.Error(), "webhook": ep.Name}
			res.Status, res.Latency = status, h.now().Sub(start)
			h.report(res)
		} else {
			status, resp, res = h.handle(req.Context(), ep, req.URL.Path, req.Header, body, start)
		}
		if res.Outcome == OutcomeRecorded { // the common answer, pre-rendered
			c.Data(status, jsonContentType, recordedBody)
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

var errBodyTooLarge = errors.New("request body too large")

// recordedBody is the answer to a recorded change, exactly as c.JSON renders answerRecorded;
// writing it as is saves encoding a map per request (3% of the service's CPU under load).
var recordedBody = []byte(`{"recorded":true}`)

const jsonContentType = "application/json; charset=utf-8"

// readBody reads at most limit bytes of r; one byte more is errBodyTooLarge. A known
// contentLength sizes the buffer once, so a large body is not copied while growing.
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	size := contentLength + 1 // room for the read that reports EOF
	if contentLength < 0 || contentLength > limit {
		size = 4 << 10
	}
	buf := make([]byte, 0, size)
	lr := io.LimitReader(r, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
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
