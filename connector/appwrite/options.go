package appwrite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/appwrite-sync/appwrite-sync/internal/defaults"
	"github.com/sirupsen/logrus"
)

// Defaults of Options. Each applies when the field is left zero.
const (
	// PageSizeDefault is the number of rows asked for per list request. Appwrite's own default
	// is 25 with no hard maximum; larger pages are fewer round trips but slower each.
	PageSizeDefault = 1000
	// RequestTimeoutDefault bounds one HTTP attempt (connect, headers and whole body).
	RequestTimeoutDefault = 60 * time.Second
	// MaxRetriesDefault is how many times a failed request is retried after the first attempt.
	MaxRetriesDefault = 8
	// InitialBackoffDefault is the first wait before a retry; later waits grow by
	// backoffMultiplier with ±50% jitter.
	InitialBackoffDefault = 500 * time.Millisecond
	// MaxBackoffDefault caps one wait between retries (Retry-After may ask for more, within
	// MaxElapsed).
	MaxBackoffDefault = 30 * time.Second
	// MaxElapsedDefault bounds the whole of one request including its retries and waits.
	MaxElapsedDefault = 2 * time.Minute
	// MaxResponseBytesDefault caps one response body (a page of large rows).
	MaxResponseBytesDefault int64 = 512 << 20
	// UserAgentDefault is sent with every request.
	UserAgentDefault = "appwrite-sync"
)

const (
	backoffMultiplier   = 1.5
	backoffRandomFactor = 0.5
)

// Options configures a Client. Endpoint, Project and APIKey are required; everything else has
// a default.
type Options struct {
	// Endpoint is the API root including the version prefix, e.g. https://cloud.appwrite.io/v1
	// (config: appwrite.endpoint).
	Endpoint string
	// Project is the project id sent as X-Appwrite-Project (config: appwrite.project).
	Project string
	// APIKey is the secret sent as X-Appwrite-Key (config: appwrite.api_key). It needs the
	// scope rows.read (TablesDB) or documents.read (legacy); webhooks.read for GetWebhook.
	APIKey string

	// PageSize is the page size used when a ListQuery leaves Limit zero. Default
	// PageSizeDefault (1000 rows).
	PageSize int
	// HTTPClient sends the requests. Default: a client with dial and TLS handshake timeouts of
	// 10s and keep-alive. Whatever client is given, redirects to another host are refused so
	// the API key never leaves the configured host.
	HTTPClient *http.Client
	// RequestTimeout bounds one attempt. Default RequestTimeoutDefault (60s).
	RequestTimeout time.Duration
	// MaxRetries is the number of retries after the first attempt. Default MaxRetriesDefault
	// (8); a negative value disables retries.
	MaxRetries int
	// InitialBackoff is the first wait between attempts. Default InitialBackoffDefault (500ms).
	InitialBackoff time.Duration
	// MaxBackoff caps one computed wait. Default MaxBackoffDefault (30s).
	MaxBackoff time.Duration
	// MaxElapsed bounds one request with all its retries and waits: a retry whose wait would
	// end past it is not made. Default MaxElapsedDefault (2m).
	MaxElapsed time.Duration
	// MaxResponseBytes caps one response body. Default MaxResponseBytesDefault (512 MiB).
	MaxResponseBytes int64
	// UserAgent is sent as User-Agent. Default UserAgentDefault.
	UserAgent string
	// Logger receives one warning per retry (never the key). Default: discard.
	Logger *logrus.Entry

	// Now is the clock (Retry-After dates, elapsed time). Default time.Now.
	Now func() time.Time
	// Sleep waits between attempts; it must return early with ctx's error when ctx ends.
	// Default: a timer. Tests inject a recorder.
	Sleep func(ctx context.Context, d time.Duration) error
}

// withDefaults returns a copy of o with every zero field set to its default.
func (o Options) withDefaults() Options {
	defaults.Zero(&o.PageSize, PageSizeDefault)
	defaults.Zero(&o.RequestTimeout, RequestTimeoutDefault)
	defaults.Zero(&o.MaxRetries, MaxRetriesDefault)
	o.MaxRetries = max(o.MaxRetries, 0) // negative: no retries
	defaults.Zero(&o.InitialBackoff, InitialBackoffDefault)
	defaults.Zero(&o.MaxBackoff, MaxBackoffDefault)
	defaults.Zero(&o.MaxElapsed, MaxElapsedDefault)
	defaults.Zero(&o.MaxResponseBytes, MaxResponseBytesDefault)
	defaults.Zero(&o.UserAgent, UserAgentDefault)
	defaults.Quiet(&o.Logger)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	return o
}

// validate checks the options after withDefaults. Messages name the config field and the fix
// and never quote the key.
func (o Options) validate() error {
	var errs []error
	if strings.TrimSpace(o.Endpoint) == "" {
		errs = append(errs, errors.New("appwrite.endpoint is empty: set it to the API root, e.g. https://cloud.appwrite.io/v1"))
	} else if err := checkEndpoint(o.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(o.Project) == "" {
		errs = append(errs, errors.New("appwrite.project is empty: set it to the project id (Console → Settings → Project ID)"))
	}
	if strings.TrimSpace(o.APIKey) == "" {
		errs = append(errs, errors.New("appwrite.api_key is empty: create an API key with scope rows.read (Console → Overview → API keys)"))
	} else if strings.ContainsAny(o.APIKey, "\r\n") {
		errs = append(errs, errors.New("appwrite.api_key contains a line break: remove it"))
	}
	if o.PageSize < 0 {
		errs = append(errs, fmt.Errorf("page size %d is negative: use a positive number or 0 for the default %d", o.PageSize, PageSizeDefault))
	}
	for name, d := range map[string]time.Duration{
		"request timeout": o.RequestTimeout, "initial backoff": o.InitialBackoff,
		"max backoff": o.MaxBackoff, "max elapsed": o.MaxElapsed,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative: use a positive duration or 0 for the default", name, d))
		}
	}
	if o.MaxResponseBytes < 0 {
		errs = append(errs, fmt.Errorf("max response bytes %d is negative", o.MaxResponseBytes))
	}
	return errors.Join(errs...)
}

func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("appwrite.endpoint %q is not a URL: %v; use e.g. https://cloud.appwrite.io/v1", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("appwrite.endpoint %q: scheme must be https (or http), e.g. https://cloud.appwrite.io/v1", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("appwrite.endpoint %q has no host: use e.g. https://cloud.appwrite.io/v1", raw)
	}
	if u.User != nil {
		return fmt.Errorf("appwrite.endpoint must not carry credentials in the URL: use appwrite.api_key")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("appwrite.endpoint %q must not have a query or fragment", raw)
	}
	return nil
}

// defaultHTTPClient has bounded connect and handshake times; the whole attempt is bounded by
// RequestTimeout through the request context.
func defaultHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   8,
		},
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
