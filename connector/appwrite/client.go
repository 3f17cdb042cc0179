package appwrite

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// Client reads rows and webhooks from one Appwrite project. It is safe for concurrent use.
type Client struct {
	endpoint string // without trailing slash
	project  string
	key      string
	opts     Options
	hc       *http.Client
	log      *logrus.Entry
	// api remembers which database API the server speaks once an answer showed it.
	api atomic.Int32
}

const (
	apiUnknown int32 = iota
	apiTables
	apiLegacy
)

// New validates opts and returns a client. It does not contact the server.
func New(opts Options) (*Client, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("appwrite client: %w", err)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	} else {
		cp := *hc
		hc = &cp
	}
	endpoint := strings.TrimRight(strings.TrimSpace(opts.Endpoint), "/")
	u, _ := url.Parse(endpoint) // validated above
	next := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		// X-Appwrite-Key would follow a redirect anywhere: allow the configured host only.
		if req.URL.Host != u.Host {
			return fmt.Errorf("%w to %s (it would receive the API key): set appwrite.endpoint to the final URL", errRedirect, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 5 {
			return fmt.Errorf("%w: more than 5 redirects", errRedirect)
		}
		return nil
	}
	c := &Client{
		endpoint: endpoint,
		project:  strings.TrimSpace(opts.Project),
		key:      strings.TrimSpace(opts.APIKey),
		opts:     opts,
		hc:       hc,
		log:      opts.Logger,
	}
	return c, nil
}

var errRedirect = errors.New("refusing redirect")

// Endpoint returns the API root the client talks to (without trailing slash).
func (c *Client) Endpoint() string { return c.endpoint }

// UsesLegacyAPI reports whether the client has found that the server only speaks the legacy
// Databases API (collections/documents), i.e. predates TablesDB (< 1.8).
func (c *Client) UsesLegacyAPI() bool { return c.api.Load() == apiLegacy }

// request is one logical request (a GET unless method says otherwise); do retries it, so it
// must be idempotent.
type request struct {
	op        string // for errors and logs: "list rows main/posts"
	path      string // escaped, after the endpoint: "/tablesdb/main/tables/posts/rows"
	query     url.Values
	family    family
	key       connector.TableKey
	webhookID string
	method    string // "" is GET
	body      []byte // JSON, sent with method
	scope     string // the key scope the route needs, when not the family's read scope
}

// do sends r until it succeeds, fails for good, the retry budget is spent or ctx ends. It
// returns the body of a 2xx answer.
func (c *Client) do(ctx context.Context, r *request) ([]byte, error) {
	b := newBackoff(c.opts)
	start := c.opts.Now()
	for attempt := 1; ; attempt++ {
		body, retryAfter, err := c.attempt(ctx, r)
		if err == nil {
			return body, nil
		}
		if cerr := context.Cause(ctx); cerr != nil {
			return nil, fmt.Errorf("appwrite: %s: %w (last attempt: %v)", r.op, cerr, err)
		}
		if !retryable(err) {
			var ae *APIError
			if errors.As(err, &ae) {
				ae.Attempts = attempt
			}
			return nil, err
		}
		wait := b.NextBackOff()
		if retryAfter >= 0 {
			wait = retryAfter
		}
		elapsed := c.opts.Now().Sub(start)
		if attempt > c.opts.MaxRetries || elapsed+wait > c.opts.MaxElapsed {
			return nil, giveUp(err, r, attempt, elapsed, wait, retryAfter >= 0)
		}
		c.log.WithFields(logrus.Fields{
			"op": r.op, "attempt": attempt, "wait": wait.String(), "error": err.Error(),
		}).Warn("appwrite request failed, retrying")
		if serr := c.opts.Sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("appwrite: %s: waiting to retry: %w (last attempt: %v)", r.op, serr, err)
		}
	}
}

// attempt sends r once. retryAfter is the server's Retry-After, or -1 when absent.
func (c *Client) attempt(ctx context.Context, r *request) (body []byte, retryAfter time.Duration, err error) {
	retryAfter = -1
	actx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	u := c.endpoint + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	var reqBody io.Reader
	if r.body != nil {
		reqBody = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(actx, method, u, reqBody)
	if err != nil {
		return nil, retryAfter, fmt.Errorf("appwrite: %s: building request: %w", r.op, err)
	}
	req.Header.Set("X-Appwrite-Project", c.project)
	req.Header.Set("X-Appwrite-Key", c.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.opts.UserAgent)

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, retryAfter, c.transportError(ctx, actx, r, err)
	}
	defer resp.Body.Close()
	data, err := readBody(resp, c.opts.MaxResponseBytes)
	if err != nil {
		return nil, retryAfter, c.transportError(ctx, actx, r, fmt.Errorf("reading response: %w", err))
	}
	if int64(len(data)) > c.opts.MaxResponseBytes {
		return nil, retryAfter, fmt.Errorf("appwrite: %s: response larger than %d bytes: lower the page size", r.op, c.opts.MaxResponseBytes)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return data, retryAfter, nil
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, retryAfter, fmt.Errorf("appwrite: %s: unexpected redirect %d to %q: set appwrite.endpoint to the final URL",
			r.op, resp.StatusCode, resp.Header.Get("Location"))
	}
	if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.opts.Now()); ok {
		retryAfter = ra
	}
	return nil, retryAfter, c.apiError(resp.StatusCode, data, r)
}

// netError is a transport failure (connection refused, reset, timeout of one attempt):
// retryable.
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

func (c *Client) transportError(ctx, actx context.Context, r *request, err error) error {
	if ctx.Err() == nil && actx.Err() != nil {
		err = fmt.Errorf("no complete answer within %s: %w", c.opts.RequestTimeout, err)
	}
	wrapped := fmt.Errorf("appwrite: %s: %s", r.op, c.redact(err.Error()))
	var certErr *tls.CertificateVerificationError
	if errors.Is(err, errRedirect) || errors.As(err, &certErr) {
		return wrapped
	}
	return &netError{err: wrapped}
}

func retryable(err error) bool {
	var ne *netError
	if errors.As(err, &ne) {
		return true
	}
	var ae *APIError
	return errors.As(err, &ae) && ae.Retryable()
}

func giveUp(err error, r *request, attempts int, elapsed, wait time.Duration, serverAsked bool) error {
	var ae *APIError
	if errors.As(err, &ae) {
		ae.Attempts = attempts
		if serverAsked && wait > 0 {
			ae.Hint = strings.TrimSpace(fmt.Sprintf("%s (the server asked to wait %s more)", ae.Hint, wait))
		}
		return ae
	}
	return fmt.Errorf("appwrite: %s: gave up after %d attempts in %s: %w", r.op, attempts, elapsed.Round(time.Millisecond), err)
}

// apiError decodes Appwrite's error body ({"message","code","type","version"}).
func (c *Client) apiError(status int, body []byte, r *request) *APIError {
	e := &APIError{Op: r.op, Status: status}
	var m struct {
		Message string          `json:"message"`
		Code    json.RawMessage `json:"code"`
		Type    string          `json:"type"`
		Version string          `json:"version"`
	}
	if err := json.Unmarshal(body, &m); err == nil && (m.Type != "" || m.Message != "") {
		e.Message, e.Type, e.Version = m.Message, m.Type, m.Version
		_ = json.Unmarshal(m.Code, &e.Code)
	} else {
		e.Message = snippet(body)
	}
	e.Message = c.redact(e.Message)
	e.Hint = c.hint(e, r)
	return e
}

// snippet returns the start of a non-JSON body, on one line.
func snippet(b []byte) string {
	const max = 200
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// readBody reads at most max+1 bytes, in one allocation when the length is announced.
func readBody(resp *http.Response, max int64) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= max {
		// net/http never returns more than Content-Length bytes.
		buf := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, max+1))
}
