// Package config loads appwrite-sync's single YAML file: strict keys (a typo is an error, with
// a did-you-mean), ${VAR} and ${VAR:-default} expansion per value (so line numbers stay true
// and values from the environment are redacted in every message), named defaults, and
// validation that reports every problem at once with file, line, YAML path and a fix.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/admin"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/connector/audit"
	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/meilisink"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/pgsink"
	"github.com/appwrite-sync/appwrite-sync/connector/spool"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
	"github.com/appwrite-sync/appwrite-sync/internal/yamlnode"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// Defaults of the keys this package owns: the listeners, the HTTP server and the process. A
// key that configures another package takes its default from there (setDefaults says which):
// a default is defined once, next to the code whose behaviour it sets.
const (
	ListenDefault          = ":8080"
	AdminListenDefault     = "127.0.0.1:9090"
	MaxHeaderBytesDefault  = 64 << 10
	WarehouseSchemaDefault = "appwrite"
	MeiliURLDefault        = "http://127.0.0.1:7700"
	// AppwriteEndpointDefault is Appwrite Cloud's API.
	AppwriteEndpointDefault  = "https://cloud.appwrite.io/v1"
	ReadHeaderTimeoutDefault = 10 * time.Second
	ReadTimeoutDefault       = 30 * time.Second
	WriteTimeoutDefault      = 30 * time.Second
	IdleTimeoutDefault       = 120 * time.Second
	ShutdownTimeoutDefault   = 20 * time.Second
	// DrainDelayDefault is server.drain_delay: after SIGTERM, how long /readyz answers 503 while
	// webhooks are still taken, so load balancers stop sending before the listener closes. It
	// covers the readiness probe shipped in deploy/ (period 1 s × failure threshold 2) plus 3 s
	// for the load balancer to act on it.
	DrainDelayDefault = 5 * time.Second
	MinAdminTokenLen  = 16
	// MemoryLimitDefault is memory_limit: the Go runtime's soft memory limit of serve. The GC
	// lets the heap grow to twice what is live, so a backfill's page buffers and caches can push
	// RSS well above the live heap; under a soft limit the GC runs earlier as RSS nears it. It
	// is soft: the process never fails because of it, and above it the runtime caps GC at about
	// half the CPU. 128 MiB keeps RSS within the sidecar's goals (backlog ≤ 150 MiB, backfill ≤
	// 200 MiB) while serve runs the GC less often below it (GOGC 400, see cmd/appwrite-sync).
	MemoryLimitDefault = 128 << 20
	// MemoryLimitMin is the smallest memory_limit accepted other than 0 (off).
	MemoryLimitMin = 16 << 20
)

// Config is the whole file, defaults applied. Each field tagged `yaml:"key"` is a key of the
// file, decoded by yamlnode.Node.Decode (the tag is the only place a key is spelled); the
// other tags name the hooks in decode.go. Adding an option: a field with its tag and doc
// comment, and its default in setDefaults (a constant of the package whose behaviour it sets).
type Config struct {
	File   string
	Listen string `yaml:"listen"`
	TLS    TLS    `yaml:"tls" decode:"tls"` // when set, the webhook listener (listen) serves HTTPS
	Admin  Admin  `yaml:"admin"`
	// Webhooks: at least one; each with a path of its own.
	Webhooks  []Webhook `yaml:"webhooks" decode:"webhooks"`
	Limits    Limits    `yaml:"limits"`
	Server    Server    `yaml:"server"`
	Log       Log       `yaml:"log"`
	State     State     `yaml:"state"`
	Delivery  Delivery  `yaml:"delivery"`
	Meili     Meili     `yaml:"meilisearch"`
	Warehouse Warehouse `yaml:"warehouse"`
	Appwrite  Appwrite  `yaml:"appwrite"`
	Reconcile Reconcile `yaml:"reconcile"`
	// tables: the mapping written inline, parsed by package mapping into Mapping.
	_ struct{} `yaml:"tables"`
	// MappingFile is set when tables live in a separate file (relative to the config file).
	MappingFile string `yaml:"mapping_file"`
	// MemoryLimit is the soft memory limit of serve in bytes (runtime/debug.SetMemoryLimit);
	// 0 turns it off. Default MemoryLimitDefault. GOMEMLIMIT, when set, wins over it.
	MemoryLimit int64 `yaml:"memory_limit" decode:"memory_limit"`
	Mapping     *mapping.Mapping

	Quarantine Quarantine `yaml:"quarantine"`
	// Audit is the audit log (package audit); off while audit.events is empty.
	Audit Audit `yaml:"audit"`
}

// Audit selects the webhooks kept in the audit log, whatever their resource.
type Audit struct {
	// Events are Appwrite event strings ("users.*", "buckets.*.files.*"); a webhook whose
	// events header holds one of them is recorded. Empty (default): no audit log.
	Events []string `yaml:"events" decode:"audit_events"`
	// Table is the warehouse table, in warehouse.schema. Default audit.TableDefault.
	Table string `yaml:"table" check:"table"`
	// Retention removes entries older than it; 0 (default) keeps every entry.
	Retention time.Duration `yaml:"retention"`
}

// Admin is the admin API listener (status, backfill, dead letters, /metrics).
type Admin struct {
	Listen string `yaml:"listen"`                // "" disables the admin listener
	Token  string `yaml:"token" redact:"secret"` // bearer token for /admin/*; secret
	TLS    TLS    `yaml:"tls" decode:"tls"`      // when set, the admin listener serves HTTPS
}

// TLS is the certificate of a listener. Both files empty (default) means plain HTTP; both
// set means HTTPS with TLS 1.2 or newer. Relative paths are resolved against the directory of
// the config file. Validation loads the pair, so a listener never starts with a broken one.
type TLS struct {
	CertFile string `yaml:"cert_file"` // PEM certificate, optionally followed by its intermediates
	KeyFile  string `yaml:"key_file"`  // PEM private key of the certificate
}

// Enabled reports whether the listener serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" && t.KeyFile != "" }

// Webhook is one Appwrite webhook pointing here (its keys: webhookKeys).
type Webhook struct {
	Name        string // "webhooks[i]" for messages and metrics
	URL         string // exactly as typed into Appwrite: the signature covers it
	Path        string // as in a URL (%-escapes kept; webhook.RoutePath decodes); default: the path of URL
	SigningKeys []string
	BasicUser   string
	BasicPass   string
}

// webhookKeys are the keys of one entry of webhooks.
type webhookKeys struct {
	URL         string   `yaml:"url"`
	Path        string   `yaml:"path"`
	SigningKeys []string `yaml:"signing_keys"`
	BasicAuth   struct {
		Username string `yaml:"username"`
		Password string `yaml:"password" redact:"secret"`
	} `yaml:"basic_auth"`
}

// Limits bound what one request may cost.
type Limits struct {
	// MaxBodyBytes is the largest webhook body; above it the answer is 413. Default
	// webhook.MaxBodyBytesDefault.
	MaxBodyBytes int64 `yaml:"max_body_bytes" check:"bytes"`
	// MaxHeaderBytes bounds the request headers of both listeners. Default MaxHeaderBytesDefault.
	MaxHeaderBytes int `yaml:"max_header_bytes" check:"bytes"`
	// RatePerSource is the sustained number of requests per second one client IP may send to
	// the webhook routes; 0 (default) turns the limit off. Over it the answer is 429.
	RatePerSource float64 `yaml:"rate_per_source" decode:"rate"`
	// Burst is how many requests a client IP may send at once. Default webhook.RateBurstDefault.
	Burst int `yaml:"burst" check:"positive"`
	// TrustedProxies are the IPs and CIDRs whose X-Forwarded-For / X-Real-IP headers name
	// the client IP. Empty (default): the TCP peer is the client, the headers are ignored.
	TrustedProxies []string `yaml:"trusted_proxies" decode:"proxies"`
	// BodyBudget bounds the bytes of webhook bodies being read at once (the intake budget).
	// Default (0 in the file): BodyBudgetFor(MemoryLimit, MaxBodyBytes).
	BodyBudget int64 `yaml:"body_budget_bytes" check:"body_budget"`
	// BodyWait is how long a request waits for room in BodyBudget. Default webhook.BodyWaitDefault.
	BodyWait time.Duration `yaml:"body_wait" check:"body_wait"`
}

// BodyBudgetFor is limits.body_budget_bytes when it is not set: a quarter of memory_limit
// (64 MiB when memory_limit is off), and never less than two bodies of the largest size.
func BodyBudgetFor(memoryLimit, maxBody int64) int64 {
	b := int64(64 << 20)
	if memoryLimit > 0 {
		b = memoryLimit / 4
	}
	return max(b, 2*maxBody)
}

// Server holds the HTTP timeouts of both listeners (keys in alphabetical order).
type Server struct {
	// DrainDelay: after SIGTERM/SIGINT, /readyz answers 503 and webhooks are still taken this
	// long before the listener closes. Default DrainDelayDefault; 0 closes at once.
	DrainDelay        time.Duration `yaml:"drain_delay"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`        // Default IdleTimeoutDefault.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"` // Default ReadHeaderTimeoutDefault.
	ReadTimeout       time.Duration `yaml:"read_timeout"`        // Default ReadTimeoutDefault.
	// ShutdownTimeout bounds the wait for in-flight requests at a stop. Default
	// ShutdownTimeoutDefault.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	WriteTimeout    time.Duration `yaml:"write_timeout"` // Default WriteTimeoutDefault.
}

// Log selects level and format ("auto": JSON unless stderr is a terminal).
type Log struct {
	Level  string `yaml:"level" check:"log_level"`   // debug, info (default), warn or error
	Format string `yaml:"format" check:"log_format"` // auto (default), json or text
}

// State is the Postgres holding the ledger, queue, jobs and quarantine.
type State struct {
	// DatabaseURL is required; its password is never shown.
	DatabaseURL string `yaml:"database_url" redact:"dsn"`
	// TombstoneRetention: how long a deleted row's tombstone is kept. Default
	// ledger.TombstoneRetentionDefault.
	TombstoneRetention time.Duration `yaml:"tombstone_retention"`
	// GroupCommitWait is the recorder's MaxWait; 0 waits not at all. Default
	// ledger.MaxWaitDefault.
	GroupCommitWait time.Duration `yaml:"group_commit_wait"`
	// GroupCommitMax bounds a group commit. Default ledger.MaxBatchDefault.
	GroupCommitMax int `yaml:"group_commit_max" check:"positive"`
	// SpoolDir, when set, holds the local spool: while the state store cannot commit, a
	// verified change is fsync'd there and answered 200, and drained into the ledger when the
	// store is back. Empty (default): off, such a change is answered 503. A relative path is
	// relative to the config file's directory.
	SpoolDir string `yaml:"spool_dir"`
	// SpoolMaxBytes caps the spool file; full, the answer is 503. Default spool.MaxBytesDefault.
	SpoolMaxBytes int64 `yaml:"spool_max_bytes" check:"spool_max_bytes"`
}

// Quarantine bounds the validly signed requests kept because they could not be decoded or
// mapped; a sweep (hourly) removes the excess, oldest first.
type Quarantine struct {
	// Retention is how long a request is kept; 0 keeps them forever. Default
	// admin.QuarantineRetentionDefault (30 days).
	Retention time.Duration `yaml:"retention"`
	// MaxRows is the most requests kept; 0: no cap. Default admin.QuarantineMaxRowsDefault.
	MaxRows int64 `yaml:"max_rows" check:"max_rows"`
}

// Delivery tunes the engine that moves changes from the ledger to the sinks (keys in
// alphabetical order). Defaults: the ledger's LeaseDefault, LingerDefault, MaxBackoffDefault
// and PollIntervalDefault.
type Delivery struct {
	Lease        time.Duration `yaml:"lease"`
	Linger       time.Duration `yaml:"linger"`
	MaxBackoff   time.Duration `yaml:"max_backoff"`
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Meili is the Meilisearch sink. Defaults: MeiliURLDefault and the sink's BatchSizeDefault,
// BatchBytesDefault and TimeoutDefault.
type Meili struct {
	URL        string        `yaml:"url"`
	APIKey     string        `yaml:"api_key" redact:"secret"`
	BatchSize  int           `yaml:"batch_size" check:"positive"`
	BatchBytes int           `yaml:"batch_bytes" check:"positive"`
	Timeout    time.Duration `yaml:"timeout"`
}

// Warehouse is the Postgres sink.
type Warehouse struct {
	DatabaseURL string `yaml:"database_url" redact:"dsn"` // default: State.DatabaseURL
	Schema      string `yaml:"schema" check:"schema"`     // Default WarehouseSchemaDefault.
	// BatchSize is the most rows one statement writes. Default the sink's BatchSizeDefault.
	BatchSize int `yaml:"batch_size" check:"positive"`
}

// Appwrite is the REST API used by backfill and reconcile.
type Appwrite struct {
	Endpoint string `yaml:"endpoint"` // Default AppwriteEndpointDefault.
	Project  string `yaml:"project"`
	APIKey   string `yaml:"api_key" redact:"secret"`
	// PageSize is the rows per list request. Default appwrite.PageSizeDefault.
	PageSize int `yaml:"page_size" check:"positive"`
	// ParallelPages: list requests a full backfill keeps in flight (1: one at a time).
	// Default backfill.ParallelPagesDefault.
	ParallelPages int `yaml:"parallel_pages" check:"parallel_pages"`
}

// Reconcile schedules backfill jobs and watches Appwrite's webhooks (global for every
// concrete mapped table; a per-table schedule is not supported).
type Reconcile struct {
	// IncrementalEvery runs an incremental reconcile of every table this often; 0 (default)
	// turns it off.
	IncrementalEvery time.Duration `yaml:"incremental_every"`
	// FullEvery runs a full reconcile (with delete detection) of every table this often; 0
	// (default) turns it off.
	FullEvery time.Duration `yaml:"full_every"`
	// Skew is subtracted from a table's watermark by incremental jobs; 0: no window. Default
	// backfill.SkewDefault (5m).
	Skew time.Duration `yaml:"skew"`
	// WebhookIDs are the Appwrite webhook ids whose health (enabled, attempts) is probed on
	// Appwrite 1.9+; empty (default) turns the probe off.
	WebhookIDs []string `yaml:"webhook_ids" decode:"webhook_ids"`
	// ProbeEvery is the probe interval. Default backfill.ProbeEveryDefault (1m).
	ProbeEvery time.Duration `yaml:"probe_every" check:"positive_duration"`
	// Lease is how long a job survives its process: a job not renewed for this long is
	// resumed by another process. Default backfill.LeaseDefault (30s).
	Lease time.Duration `yaml:"lease" check:"positive_duration"`
	// ReenableWebhooks: a webhook of WebhookIDs found disabled is enabled again through
	// PUT /v1/webhooks/{id} (Appwrite 1.9+, key scope webhooks.write) and its tables
	// reconciled from when it was disabled. Default false: status and a metric say it is
	// disabled.
	ReenableWebhooks bool `yaml:"reenable_webhooks"`
}

// LookupEnv finds an environment variable: os.LookupEnv in production, a map in tests.
type LookupEnv = yamlnode.LookupEnv

// Load reads, expands and validates the file at path.
func Load(path string) (*Config, error) { return LoadWith(path, os.LookupEnv) }

// LoadWith is Load with an injectable environment.
func LoadWith(path string, lookup LookupEnv) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w (pass --config with the path of your config.yaml)", err)
	}
	return Parse(path, data, lookup)
}

// Parse decodes and validates config text; file names it in messages.
func Parse(file string, data []byte, lookup LookupEnv) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, connector.ConfigErrors{yamlnode.YAMLSyntaxError(file, data, err)}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, connector.ConfigErrors{{File: file, Line: 1, Problem: "the file is empty",
			Fix: "start from the annotated config.yaml in the repository"}}
	}
	top := root.Content[0]
	d := yamlnode.NewNode(file, &root, lookup)
	c := &Config{File: file}
	c.setDefaults()
	var tablesNode *yaml.Node
	var tablesPath string
	for _, f := range d.Decode(top, "", c, hooks) {
		tablesNode, tablesPath = f.Value, f.Path // tables: the only key left to the caller
	}
	c.State.SpoolDir = relativeToFile(file, c.State.SpoolDir)
	c.MappingFile = relativeToFile(file, c.MappingFile)
	if c.MappingFile != "" && tablesNode != nil {
		d.Errorf(keyNode(top, "mapping_file"), "mapping_file", "keep the tables in one place: either inline or in the mapping file", "both tables and mapping_file are set")
	}
	if c.Warehouse.DatabaseURL == "" {
		c.Warehouse.DatabaseURL = c.State.DatabaseURL
	}
	if c.Limits.BodyBudget == 0 {
		c.Limits.BodyBudget = BodyBudgetFor(c.MemoryLimit, c.Limits.MaxBodyBytes)
	} else if c.Limits.BodyBudget < c.Limits.MaxBodyBytes {
		n := lookupPath(top, "limits.body_budget_bytes")
		d.Errorf(n, "limits.body_budget_bytes", fmt.Sprintf("raise it to at least limits.max_body_bytes (%d), or lower max_body_bytes", c.Limits.MaxBodyBytes),
			"smaller than limits.max_body_bytes: no body of the largest allowed size could ever be read")
	}
	c.validate(d, top)

	var tables []*mapping.Table
	var errs connector.ConfigErrors
	switch {
	case tablesNode != nil:
		tables = mapping.ParseTables(d, tablesNode, tablesPath)
	case c.MappingFile != "":
		ts, err := mapping.LoadFile(c.MappingFile, lookup)
		var ce connector.ConfigErrors
		if errors.As(err, &ce) {
			errs = append(errs, ce...)
		} else if err != nil {
			errs = append(errs, connector.ConfigError{File: file, Path: "mapping_file", Problem: err.Error(),
				Fix: "point mapping_file at a readable YAML file (relative paths are relative to the config file)"})
		}
		tables = ts
	default:
		d.Errorf(top, "tables", "map at least one Appwrite table under `tables:` (see config.yaml)", "no tables are mapped")
	}
	errs = append(errs, d.Errs...)
	if len(errs) == 0 {
		m, err := mapping.New(tables, c.Warehouse.Schema)
		var ce connector.ConfigErrors
		if errors.As(err, &ce) {
			errs = append(errs, ce...)
		} else if err != nil {
			errs = append(errs, connector.ConfigError{File: file, Path: "tables", Problem: err.Error()})
		}
		c.Mapping = m
		errs = append(errs, c.auditTableClash(top)...)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// relativeToFile resolves a path written in the config file against the file's directory.
func relativeToFile(file, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(file), p)
}

// setDefaults fills every key's default: this package's own, and those of the packages the keys
// configure.
func (c *Config) setDefaults() {
	c.Listen = ListenDefault
	c.Admin.Listen = AdminListenDefault
	c.Limits = Limits{MaxBodyBytes: webhook.MaxBodyBytesDefault, MaxHeaderBytes: MaxHeaderBytesDefault,
		Burst: webhook.RateBurstDefault, BodyWait: webhook.BodyWaitDefault}
	c.Server = Server{ReadHeaderTimeout: ReadHeaderTimeoutDefault, ReadTimeout: ReadTimeoutDefault,
		WriteTimeout: WriteTimeoutDefault, IdleTimeout: IdleTimeoutDefault, ShutdownTimeout: ShutdownTimeoutDefault,
		DrainDelay: DrainDelayDefault}
	c.Log = Log{Level: "info", Format: "auto"}
	c.State = State{TombstoneRetention: ledger.TombstoneRetentionDefault, GroupCommitWait: ledger.MaxWaitDefault,
		GroupCommitMax: ledger.MaxBatchDefault, SpoolMaxBytes: spool.MaxBytesDefault}
	c.Delivery = Delivery{Lease: ledger.LeaseDefault, PollInterval: ledger.PollIntervalDefault, MaxBackoff: ledger.MaxBackoffDefault,
		Linger: ledger.LingerDefault}
	c.Meili = Meili{URL: MeiliURLDefault, BatchSize: meilisink.BatchSizeDefault, BatchBytes: meilisink.BatchBytesDefault,
		Timeout: meilisink.TimeoutDefault}
	c.Warehouse = Warehouse{Schema: WarehouseSchemaDefault, BatchSize: pgsink.BatchSizeDefault}
	c.Appwrite = Appwrite{Endpoint: AppwriteEndpointDefault, PageSize: appwrite.PageSizeDefault, ParallelPages: backfill.ParallelPagesDefault}
	c.Reconcile = Reconcile{Skew: backfill.SkewDefault, ProbeEvery: backfill.ProbeEveryDefault, Lease: backfill.LeaseDefault}
	c.MemoryLimit = MemoryLimitDefault
	c.Quarantine = Quarantine{Retention: admin.QuarantineRetentionDefault, MaxRows: admin.QuarantineMaxRowsDefault}
	c.Audit = Audit{Table: audit.TableDefault}
}

func (c *Config) validate(d *yamlnode.Node, top *yaml.Node) {
	at := func(path string) *yaml.Node { return lookupPath(top, path) }
	if c.State.DatabaseURL == "" {
		d.Errorf(at("state.database_url"), "state.database_url", "set it to a Postgres URL, e.g. postgres://user:pass@localhost:5432/appwrite_sync (or export DATABASE_URL)", "the state store is required")
	} else if err := checkDSN(c.State.DatabaseURL); err != nil {
		d.Errorf(at("state.database_url"), "state.database_url", "write postgres://user:password@host:5432/dbname", "%v", err)
	}
	if c.Warehouse.DatabaseURL != "" && c.Warehouse.DatabaseURL != c.State.DatabaseURL {
		if err := checkDSN(c.Warehouse.DatabaseURL); err != nil {
			d.Errorf(at("warehouse.database_url"), "warehouse.database_url", "write postgres://user:password@host:5432/dbname, or leave it empty to use the state store", "%v", err)
		}
	}
	if len(c.Webhooks) == 0 {
		d.Errorf(at("webhooks"), "webhooks", "add one entry per Appwrite webhook that points here (url + signing_keys)", "no webhooks are configured")
	}
	if c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			d.Errorf(at("admin.listen"), "admin.listen", "write host:port, e.g. 127.0.0.1:9090", "not a host:port")
		}
		if c.Admin.Token == "" {
			d.Errorf(at("admin.token"), "admin.token", "set a random token (e.g. `openssl rand -hex 24`) via ${APPWRITE_SYNC_ADMIN_TOKEN}, or set admin.listen: \"\" to disable the admin API", "admin.token is required when admin.listen is set")
		} else if len(c.Admin.Token) < MinAdminTokenLen {
			d.Errorf(at("admin.token"), "admin.token", "use at least 16 random characters (e.g. `openssl rand -hex 24`)", "admin.token is too short")
		}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		d.Errorf(at("listen"), "listen", "write host:port or :port, e.g. \":8080\"", "not a host:port")
	}
	if c.Admin.Listen != "" && c.Admin.Listen == c.Listen {
		d.Errorf(at("admin.listen"), "admin.listen", "give the admin API its own port, kept off the public interface", "admin.listen equals listen")
	}
	if c.Appwrite.Endpoint != "" {
		if u, err := url.Parse(c.Appwrite.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.Errorf(at("appwrite.endpoint"), "appwrite.endpoint", "write the API endpoint, e.g. https://cloud.appwrite.io/v1", "not an absolute http(s) URL")
		}
	}
	if c.Appwrite.Project == "" || c.Appwrite.APIKey == "" {
		// Reconcile reads the Appwrite API: without credentials a schedule would silently
		// never run.
		for _, k := range []struct {
			key string
			set bool
		}{{"incremental_every", c.Reconcile.IncrementalEvery > 0}, {"full_every", c.Reconcile.FullEvery > 0},
			{"webhook_ids", len(c.Reconcile.WebhookIDs) > 0}, {"reenable_webhooks", c.Reconcile.ReenableWebhooks}} {
			if key := k.key; k.set {
				d.Errorf(at("reconcile."+key), "reconcile."+key, "set appwrite.project and appwrite.api_key (a key with scope rows.read, and webhooks.read for webhook_ids), or remove reconcile."+key,
					"reconcile needs the Appwrite API")
			}
		}
	}
	if c.Reconcile.ReenableWebhooks && len(c.Reconcile.WebhookIDs) == 0 {
		d.Errorf(at("reconcile.reenable_webhooks"), "reconcile.reenable_webhooks", "list the webhooks to watch in reconcile.webhook_ids (the key needs webhooks.read and webhooks.write)",
			"reenable_webhooks acts on the webhooks of reconcile.webhook_ids, and none are listed")
	}
	if u, err := url.Parse(c.Meili.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.Errorf(at("meilisearch.url"), "meilisearch.url", "write e.g. http://127.0.0.1:7700", "not an absolute http(s) URL")
	}
}

// auditTableClash refuses an audit table that is also a mapped table's warehouse table.
func (c *Config) auditTableClash(top *yaml.Node) connector.ConfigErrors {
	if len(c.Audit.Events) == 0 || c.Mapping == nil {
		return nil
	}
	for _, t := range c.Mapping.Tables {
		if t.PG != nil && t.PG.Table == c.Audit.Table {
			line := 0
			if n := lookupPath(top, "audit.table"); n != nil {
				line = n.Line
			}
			return connector.ConfigErrors{{File: c.File, Line: line, Path: "audit.table", Value: c.Audit.Table,
				Problem: fmt.Sprintf("is also the warehouse table of %s (%s:%d)", t.Key(), t.File, t.Line),
				Fix:     "give the audit log a table of its own, e.g. audit_log"}}
		}
	}
	return nil
}

// checkDSN validates a Postgres URL without ever echoing it (it may hold a password).
func checkDSN(s string) error {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		if _, err := url.Parse(s); err != nil {
			return errors.New("not a valid postgres:// URL")
		}
		return nil
	}
	if strings.Contains(s, "=") { // key=value form
		return nil
	}
	return errors.New("not a Postgres connection string")
}

func lookupPath(n *yaml.Node, path string) *yaml.Node {
	for _, part := range strings.Split(path, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// Secrets lists every secret value in the config, so logs and error bodies can be checked
// (and scrubbed) against them.
func (c *Config) Secrets() []string {
	var s []string
	seen := map[string]bool{}
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			s = append(s, v)
		}
	}
	add(c.Admin.Token)
	for _, w := range c.Webhooks {
		for _, k := range w.SigningKeys {
			add(k)
		}
		add(w.BasicPass)
	}
	add(c.Meili.APIKey)
	add(c.Appwrite.APIKey)
	for _, dsn := range []string{c.State.DatabaseURL, c.Warehouse.DatabaseURL} {
		for _, p := range dsnPasswords(dsn) {
			add(p)
		}
	}
	return s
}
