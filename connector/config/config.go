// Package config loads appwrite-sync's single YAML file: strict keys (a typo is an error, with
// a did-you-mean), ${VAR} and ${VAR:-default} expansion per value (so line numbers stay true
// and values from the environment are redacted in every message), named defaults, and
// validation that reports every problem at once with file, line, YAML path and a fix.
package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/admin"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	meilisink "github.com/appwrite-sync/appwrite-sync/connector/sink/meilisearch"
	pgsink "github.com/appwrite-sync/appwrite-sync/connector/sink/postgres"
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

// Config is the whole file, defaults applied.
type Config struct {
	File      string
	Listen    string
	TLS       TLS // when set, the webhook listener (listen) serves HTTPS
	Admin     Admin
	Webhooks  []Webhook
	Limits    Limits
	Server    Server
	Log       Log
	State     State
	Delivery  Delivery
	Meili     Meili
	Warehouse Warehouse
	Appwrite  Appwrite
	Reconcile Reconcile
	// MemoryLimit is the soft memory limit of serve in bytes (runtime/debug.SetMemoryLimit);
	// 0 turns it off. Default MemoryLimitDefault. GOMEMLIMIT, when set, wins over it.
	MemoryLimit int64
	// MappingFile is set when tables live in a separate file.
	MappingFile string
	Mapping     *mapping.Mapping

	Quarantine Quarantine
}

// Admin is the admin API listener (status, backfill, dead letters, /metrics).
type Admin struct {
	Listen string // "" disables the admin listener
	Token  string // bearer token for /admin/*; secret
	TLS    TLS    // when set, the admin listener serves HTTPS
}

// TLS is the certificate of a listener. Both files empty (default) means plain HTTP; both
// set means HTTPS with TLS 1.2 or newer. Relative paths are resolved against the directory of
// the config file. Validation loads the pair, so a listener never starts with a broken one.
type TLS struct {
	CertFile string // PEM certificate, optionally followed by its intermediates
	KeyFile  string // PEM private key of the certificate
}

// Enabled reports whether the listener serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" && t.KeyFile != "" }

// Webhook is one Appwrite webhook pointing here.
type Webhook struct {
	Name        string // "webhooks[i]" for messages and metrics
	URL         string // exactly as typed into Appwrite: the signature covers it
	Path        string // as in a URL (%-escapes kept; webhook.RoutePath decodes); default: the path of URL
	SigningKeys []string
	BasicUser   string
	BasicPass   string
}

// Limits bound what one request may cost.
type Limits struct {
	MaxBodyBytes   int64
	MaxHeaderBytes int
	// RatePerSource is the sustained number of requests per second one client IP may send to
	// the webhook routes; 0 (default) turns the limit off. Over it the answer is 429.
	RatePerSource float64
	// Burst is how many requests a client IP may send at once. Default webhook.RateBurstDefault.
	Burst int
	// TrustedProxies are the IPs and CIDRs whose X-Forwarded-For / X-Real-IP headers name
	// the client IP. Empty (default): the TCP peer is the client, the headers are ignored.
	TrustedProxies []string
	// BodyBudget bounds the bytes of webhook bodies being read at once (the intake budget).
	// Default (0 in the file): BodyBudgetFor(MemoryLimit, MaxBodyBytes).
	BodyBudget int64
	// BodyWait is how long a request waits for room in BodyBudget. Default webhook.BodyWaitDefault.
	BodyWait time.Duration
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

// Server holds the HTTP timeouts of both listeners.
type Server struct {
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout, ShutdownTimeout time.Duration
	// DrainDelay: after SIGTERM/SIGINT, /readyz answers 503 and webhooks are still taken this
	// long before the listener closes. Default DrainDelayDefault; 0 closes at once.
	DrainDelay time.Duration
}

// Log selects level and format ("auto": JSON unless stderr is a terminal).
type Log struct {
	Level  string
	Format string
}

// State is the Postgres holding the ledger, queue, jobs and quarantine.
type State struct {
	DatabaseURL        string
	TombstoneRetention time.Duration
	GroupCommitWait    time.Duration
	GroupCommitMax     int
	// SpoolDir, when set, holds the local spool: while the state store cannot commit, a
	// verified change is fsync'd there and answered 200, and drained into the ledger when the
	// store is back. Empty (default): off, such a change is answered 503. A relative path is
	// relative to the config file's directory.
	SpoolDir string
	// SpoolMaxBytes caps the spool file; full, the answer is 503. Default spool.MaxBytesDefault.
	SpoolMaxBytes int64
}

// Quarantine bounds the validly signed requests kept because they could not be decoded or
// mapped; a sweep (hourly) removes the excess, oldest first.
type Quarantine struct {
	// Retention is how long a request is kept; 0 keeps them forever. Default
	// admin.QuarantineRetentionDefault (30 days).
	Retention time.Duration
	// MaxRows is the most requests kept; 0: no cap. Default admin.QuarantineMaxRowsDefault.
	MaxRows int64
}

// Delivery tunes the engine that moves changes from the ledger to the sinks.
type Delivery struct {
	Lease        time.Duration
	PollInterval time.Duration
	MaxBackoff   time.Duration
	Linger       time.Duration
}

// Meili is the Meilisearch sink.
type Meili struct {
	URL        string
	APIKey     string
	BatchSize  int
	BatchBytes int
	Timeout    time.Duration
}

// Warehouse is the Postgres sink.
type Warehouse struct {
	DatabaseURL string // default: State.DatabaseURL
	Schema      string
	BatchSize   int
}

// Appwrite is the REST API used by backfill and reconcile.
type Appwrite struct {
	Endpoint string
	Project  string
	APIKey   string
	PageSize int
	// ParallelPages: list requests a full backfill keeps in flight (1: one at a time).
	ParallelPages int
}

// Reconcile schedules backfill jobs and watches Appwrite's webhooks (global for every
// concrete mapped table; a per-table schedule is not supported).
type Reconcile struct {
	// IncrementalEvery runs an incremental reconcile of every table this often; 0 (default)
	// turns it off.
	IncrementalEvery time.Duration
	// FullEvery runs a full reconcile (with delete detection) of every table this often; 0
	// (default) turns it off.
	FullEvery time.Duration
	// Skew is subtracted from a table's watermark by incremental jobs. Default
	// backfill.SkewDefault (5m).
	Skew time.Duration
	// WebhookIDs are the Appwrite webhook ids whose health (enabled, attempts) is probed on
	// Appwrite 1.9+; empty (default) turns the probe off.
	WebhookIDs []string
	// ProbeEvery is the probe interval. Default backfill.ProbeEveryDefault (1m).
	ProbeEvery time.Duration
	// Lease is how long a job survives its process: a job not renewed for this long is
	// resumed by another process. Default backfill.LeaseDefault (30s).
	Lease time.Duration
	// ReenableWebhooks: a webhook of WebhookIDs found disabled is enabled again through
	// PUT /v1/webhooks/{id} (Appwrite 1.9+, key scope webhooks.write) and its tables
	// reconciled from when it was disabled. Default false: status and a metric say it is
	// disabled.
	ReenableWebhooks bool
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

var knownTop = []string{"listen", "tls", "admin", "webhooks", "limits", "server", "log", "state", "delivery",
	"meilisearch", "warehouse", "appwrite", "reconcile", "tables", "mapping_file", "memory_limit", "quarantine"}

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
	d := yamlnode.NewNode(file, &root, lookup)
	c := &Config{File: file}
	c.setDefaults()
	var tablesNode *yaml.Node
	var tablesPath string
	for _, f := range d.Fields(root.Content[0], "", knownTop...) {
		switch f.Key {
		case "listen":
			c.Listen = d.String(f.Value, f.Path)
		case "tls":
			c.TLS = parseTLS(d, f, file)
		case "admin":
			for _, g := range d.Fields(f.Value, f.Path, "listen", "token", "tls") {
				switch g.Key {
				case "listen":
					c.Admin.Listen = d.String(g.Value, g.Path)
				case "token":
					d.Redact(g.Value, hideSecret)
					c.Admin.Token = d.String(g.Value, g.Path)
				case "tls":
					c.Admin.TLS = parseTLS(d, g, file)
				}
			}
		case "webhooks":
			c.Webhooks = parseWebhooks(d, f)
		case "limits":
			c.parseLimits(d, f)
		case "server":
			durations(d, f, map[string]*time.Duration{"read_header_timeout": &c.Server.ReadHeaderTimeout,
				"read_timeout": &c.Server.ReadTimeout, "write_timeout": &c.Server.WriteTimeout,
				"idle_timeout": &c.Server.IdleTimeout, "shutdown_timeout": &c.Server.ShutdownTimeout,
				"drain_delay": &c.Server.DrainDelay})
		case "log":
			for _, g := range d.Fields(f.Value, f.Path, "level", "format") {
				v := d.String(g.Value, g.Path)
				if g.Key == "level" {
					if !oneOf(v, "debug", "info", "warn", "error") {
						d.Errorf(g.Value, g.Path, "use debug, info, warn or error", "unknown log level")
					}
					c.Log.Level = v
				} else {
					if !oneOf(v, "auto", "json", "text") {
						d.Errorf(g.Value, g.Path, "use auto, json or text", "unknown log format")
					}
					c.Log.Format = v
				}
			}
		case "state":
			for _, g := range d.Fields(f.Value, f.Path, "database_url", "tombstone_retention", "group_commit_wait", "group_commit_max",
				"spool_dir", "spool_max_bytes") {
				switch g.Key {
				case "database_url":
					d.Redact(g.Value, Redact)
					c.State.DatabaseURL = d.String(g.Value, g.Path)
				case "tombstone_retention":
					if v, ok := d.Duration(g.Value, g.Path); ok {
						c.State.TombstoneRetention = v
					}
				case "group_commit_wait":
					if v, ok := d.Duration(g.Value, g.Path); ok {
						c.State.GroupCommitWait = v
					}
				case "group_commit_max":
					c.State.GroupCommitMax = positiveInt(d, g)
				case "spool_dir":
					c.State.SpoolDir = d.String(g.Value, g.Path)
					if c.State.SpoolDir != "" && !filepath.IsAbs(c.State.SpoolDir) {
						c.State.SpoolDir = filepath.Join(filepath.Dir(file), c.State.SpoolDir)
					}
				case "spool_max_bytes":
					if v, ok := d.Int(g.Value, g.Path); ok {
						if v < 1<<20 {
							d.Errorf(g.Value, g.Path, "use at least 1048576 (1 MiB); a change takes about its body's size", "too small")
						} else {
							c.State.SpoolMaxBytes = v
						}
					}
				}
			}
		case "delivery":
			durations(d, f, map[string]*time.Duration{"lease": &c.Delivery.Lease,
				"poll_interval": &c.Delivery.PollInterval, "max_backoff": &c.Delivery.MaxBackoff, "linger": &c.Delivery.Linger})
		case "meilisearch":
			for _, g := range d.Fields(f.Value, f.Path, "url", "api_key", "batch_size", "batch_bytes", "timeout") {
				switch g.Key {
				case "url":
					c.Meili.URL = d.String(g.Value, g.Path)
				case "api_key":
					d.Redact(g.Value, hideSecret)
					c.Meili.APIKey = d.String(g.Value, g.Path)
				case "batch_size":
					c.Meili.BatchSize = positiveInt(d, g)
				case "batch_bytes":
					c.Meili.BatchBytes = positiveInt(d, g)
				case "timeout":
					if v, ok := d.Duration(g.Value, g.Path); ok {
						c.Meili.Timeout = v
					}
				}
			}
		case "warehouse":
			for _, g := range d.Fields(f.Value, f.Path, "database_url", "schema", "batch_size") {
				switch g.Key {
				case "database_url":
					d.Redact(g.Value, Redact)
					c.Warehouse.DatabaseURL = d.String(g.Value, g.Path)
				case "schema":
					c.Warehouse.Schema = d.String(g.Value, g.Path)
					if !identRe.MatchString(c.Warehouse.Schema) {
						d.Errorf(g.Value, g.Path, "use letters, digits and _ (max 63), starting with a letter or _", "invalid schema name")
					}
				case "batch_size":
					c.Warehouse.BatchSize = positiveInt(d, g)
				}
			}
		case "appwrite":
			for _, g := range d.Fields(f.Value, f.Path, "endpoint", "project", "api_key", "page_size", "parallel_pages") {
				switch g.Key {
				case "endpoint":
					c.Appwrite.Endpoint = d.String(g.Value, g.Path)
				case "project":
					c.Appwrite.Project = d.String(g.Value, g.Path)
				case "api_key":
					d.Redact(g.Value, hideSecret)
					c.Appwrite.APIKey = d.String(g.Value, g.Path)
				case "page_size":
					c.Appwrite.PageSize = positiveInt(d, g)
				case "parallel_pages":
					if n := positiveInt(d, g); n > 64 {
						d.Errorf(g.Value, g.Path, "use 1 to 64 (each is one concurrent request to Appwrite)", "too many parallel requests")
					} else {
						c.Appwrite.ParallelPages = n
					}
				}
			}
		case "reconcile":
			c.parseReconcile(d, f)
		case "quarantine":
			for _, g := range d.Fields(f.Value, f.Path, "retention", "max_rows") {
				if g.Key == "retention" {
					if v, ok := d.Duration(g.Value, g.Path); ok {
						c.Quarantine.Retention = v
					}
				} else if v, ok := d.Int(g.Value, g.Path); ok {
					if v < 0 {
						d.Errorf(g.Value, g.Path, "use a number of requests, or 0 for no cap", "must not be negative")
					} else {
						c.Quarantine.MaxRows = v
					}
				}
			}
		case "memory_limit":
			if v, ok := memoryLimit(d, f); ok {
				c.MemoryLimit = v
			}
		case "tables":
			tablesNode, tablesPath = f.Value, f.Path
		case "mapping_file":
			c.MappingFile = d.String(f.Value, f.Path)
			if c.MappingFile != "" && !filepath.IsAbs(c.MappingFile) {
				c.MappingFile = filepath.Join(filepath.Dir(file), c.MappingFile)
			}
			if tablesNode != nil {
				d.Errorf(f.KeyN, f.Path, "keep the tables in one place: either inline or in the mapping file", "both tables and mapping_file are set")
			}
		}
	}
	if c.Warehouse.DatabaseURL == "" {
		c.Warehouse.DatabaseURL = c.State.DatabaseURL
	}
	if c.Limits.BodyBudget == 0 {
		c.Limits.BodyBudget = BodyBudgetFor(c.MemoryLimit, c.Limits.MaxBodyBytes)
	} else if c.Limits.BodyBudget < c.Limits.MaxBodyBytes {
		n := lookupPath(root.Content[0], "limits.body_budget_bytes")
		d.Errorf(n, "limits.body_budget_bytes", fmt.Sprintf("raise it to at least limits.max_body_bytes (%d), or lower max_body_bytes", c.Limits.MaxBodyBytes),
			"smaller than limits.max_body_bytes: no body of the largest allowed size could ever be read")
	}
	c.validate(d, root.Content[0])

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
		d.Errorf(root.Content[0], "tables", "map at least one Appwrite table under `tables:` (see config.yaml)", "no tables are mapped")
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
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return c, nil
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
}

// memoryUnits are the suffixes memory_limit accepts: GOMEMLIMIT's binary units.
var memoryUnits = map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30}

// memoryLimit decodes memory_limit: a whole number of bytes, optionally followed (no space) by
// a unit B, KiB, MiB or GiB, like GOMEMLIMIT; 0 or off turns the limit off.
func memoryLimit(d *yamlnode.Node, f yamlnode.Field) (int64, bool) {
	const fix = "write bytes or a whole number with a unit B, KiB, MiB or GiB, e.g. 160MiB; 0 or off turns the limit off"
	n := f.Value
	if n.Kind != yaml.ScalarNode || strings.TrimSpace(n.Value) == "" {
		d.Errorf(n, f.Path, fix, "must be a memory size")
		return 0, false
	}
	s := n.Value
	if s == "off" {
		return 0, true
	}
	negative := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	unit := strings.TrimLeft(digits, "0123456789")
	digits = digits[:len(digits)-len(unit)]
	shift, known := memoryUnits[unit]
	_, spaced := memoryUnits[strings.TrimSpace(unit)]
	switch {
	case digits == "":
		d.Errorf(n, f.Path, fix, "must be a memory size")
	case strings.HasPrefix(unit, ".") || strings.HasPrefix(unit, ","):
		d.Errorf(n, f.Path, fix, "must be a whole number (use a smaller unit for a fraction, e.g. 1536MiB)")
	case !known && spaced:
		d.Errorf(n, f.Path, fix, "write the unit right after the number, without a space")
	case !known:
		d.Errorf(n, f.Path, fix, "unknown unit %q", unit)
	case negative:
		d.Errorf(n, f.Path, fix, "must not be negative")
	default:
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || v > math.MaxInt64>>shift {
			d.Errorf(n, f.Path, fix, "too large")
			return 0, false
		}
		if v != 0 && v<<shift < MemoryLimitMin {
			// A unit left out (160 meaning 160 bytes) would make the GC run all the time.
			d.Errorf(n, f.Path, "write at least 16MiB (with a unit, e.g. 160MiB), or 0 or off for no limit",
				"%d %s is below the smallest limit, 16MiB", v, map[uint]string{0: "bytes", 10: "KiB", 20: "MiB", 30: "GiB"}[shift])
			return 0, false
		}
		return v << shift, true
	}
	return 0, false
}

// FormatMemoryLimit writes a memory_limit the way the config accepts it, in the largest unit
// that divides it exactly: 160MiB, 1GiB, 1000B; 0 is "off".
func FormatMemoryLimit(v int64) string {
	switch {
	case v == 0:
		return "off"
	case v%(1<<30) == 0:
		return strconv.FormatInt(v>>30, 10) + "GiB"
	case v%(1<<20) == 0:
		return strconv.FormatInt(v>>20, 10) + "MiB"
	case v%(1<<10) == 0:
		return strconv.FormatInt(v>>10, 10) + "KiB"
	}
	return strconv.FormatInt(v, 10) + "B"
}

func (c *Config) parseLimits(d *yamlnode.Node, f yamlnode.Field) {
	for _, g := range d.Fields(f.Value, f.Path, "max_body_bytes", "max_header_bytes", "rate_per_source", "burst", "trusted_proxies",
		"body_budget_bytes", "body_wait") {
		switch g.Key {
		case "body_budget_bytes":
			if v, ok := d.Int(g.Value, g.Path); ok {
				if v <= 0 {
					d.Errorf(g.Value, g.Path, "use a positive number of bytes, at least limits.max_body_bytes; or leave it out for a quarter of memory_limit", "must be positive")
				} else {
					c.Limits.BodyBudget = v
				}
			}
		case "body_wait":
			if v, ok := d.Duration(g.Value, g.Path); ok {
				if v <= 0 {
					d.Errorf(g.Value, g.Path, "use a positive duration, e.g. 10s (Appwrite waits 15 s for an answer)", "must be positive")
				} else {
					c.Limits.BodyWait = v
				}
			}
		case "max_body_bytes", "max_header_bytes":
			if v, ok := d.Int(g.Value, g.Path); ok {
				if v <= 0 {
					d.Errorf(g.Value, g.Path, "use a positive number of bytes", "must be positive")
				} else if g.Key == "max_body_bytes" {
					c.Limits.MaxBodyBytes = v
				} else {
					c.Limits.MaxHeaderBytes = int(v)
				}
			}
		case "rate_per_source":
			var v float64
			var err error
			if g.Value.Kind == yaml.ScalarNode {
				v, err = strconv.ParseFloat(strings.ReplaceAll(g.Value.Value, "_", ""), 64)
			}
			if g.Value.Kind != yaml.ScalarNode || err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				d.Errorf(g.Value, g.Path, "write requests per second per client IP, e.g. 50 or 0.5; 0 turns the limit off", "must be a non-negative number")
				continue
			}
			c.Limits.RatePerSource = v
		case "burst":
			if v := positiveInt(d, g); v > 0 {
				c.Limits.Burst = v
			}
		case "trusted_proxies":
			c.Limits.TrustedProxies = d.StringList(g.Value, g.Path)
			for i, p := range c.Limits.TrustedProxies {
				if _, err := netip.ParsePrefix(p); err == nil {
					continue
				}
				if _, err := netip.ParseAddr(p); err == nil {
					continue
				}
				at := g.Value
				if g.Value.Kind == yaml.SequenceNode && i < len(g.Value.Content) {
					at = g.Value.Content[i]
				}
				d.Errorf(at, fmt.Sprintf("%s[%d]", g.Path, i), "write the IP or CIDR of your reverse proxy or load balancer, e.g. 10.0.0.0/8 or 192.0.2.10", "not an IP address or CIDR")
			}
		}
	}
}

// parseTLS reads a `{cert_file, key_file}` mapping and checks, at config time, that both are
// set and load as a key pair. Messages never echo file contents.
func parseTLS(d *yamlnode.Node, f yamlnode.Field, file string) TLS {
	var t TLS
	var certN, keyN *yaml.Node
	for _, g := range d.Fields(f.Value, f.Path, "cert_file", "key_file") {
		v := d.String(g.Value, g.Path)
		if v != "" && !filepath.IsAbs(v) {
			v = filepath.Join(filepath.Dir(file), v)
		}
		if g.Key == "cert_file" {
			t.CertFile, certN = v, g.Value
		} else {
			t.KeyFile, keyN = v, g.Value
		}
	}
	if t.CertFile == "" && t.KeyFile == "" {
		return TLS{}
	}
	if t.CertFile == "" || t.KeyFile == "" {
		missing := "cert_file"
		if t.KeyFile == "" {
			missing = "key_file"
		}
		errAt(d, f.Value, f.Path, "set both cert_file and key_file (PEM files), or remove "+f.Path+" to serve plain HTTP",
			missing+" is missing: TLS needs both cert_file and key_file")
		return TLS{}
	}
	read := func(name, path string, n *yaml.Node, what string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is the value already shown (or redacted)
			}
			d.Errorf(n, f.Path+"."+name, "point "+name+" at a readable PEM file holding "+what+" (relative paths are relative to the config file)",
				"cannot read %s: %v", name, err)
			return nil
		}
		return b
	}
	certPEM := read("cert_file", t.CertFile, certN, "the certificate (and its intermediates)")
	keyPEM := read("key_file", t.KeyFile, keyN, "the certificate's private key")
	if certPEM == nil || keyPEM == nil {
		return TLS{}
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		errAt(d, f.Value, f.Path, "cert_file must hold the PEM certificate and key_file its PEM private key (e.g. fullchain.pem and privkey.pem of Let's Encrypt)",
			"cert_file and key_file are not a usable key pair: "+strings.TrimPrefix(err.Error(), "tls: "))
		return TLS{}
	}
	return t
}

// errAt records a problem about a whole mapping (no single value to show).
func errAt(d *yamlnode.Node, n *yaml.Node, path, fix, problem string) {
	d.Errs = append(d.Errs, connector.ConfigError{File: d.File, Line: n.Line, Path: path, Problem: problem, Fix: fix})
}

func (c *Config) parseReconcile(d *yamlnode.Node, f yamlnode.Field) {
	for _, g := range d.Fields(f.Value, f.Path, "incremental_every", "full_every", "skew", "webhook_ids", "probe_every", "lease", "reenable_webhooks") {
		switch g.Key {
		case "reenable_webhooks":
			c.Reconcile.ReenableWebhooks = d.Bool(g.Value, g.Path)
		case "webhook_ids":
			c.Reconcile.WebhookIDs = d.StringList(g.Value, g.Path)
			for i, id := range c.Reconcile.WebhookIDs {
				if strings.TrimSpace(id) == "" {
					d.Errorf(g.Value, fmt.Sprintf("%s[%d]", g.Path, i), "copy the webhook id from the Appwrite console (Settings → Webhooks), or remove the entry", "empty webhook id")
				}
			}
		default:
			v, ok := d.Duration(g.Value, g.Path)
			if !ok {
				continue
			}
			switch g.Key {
			case "incremental_every":
				c.Reconcile.IncrementalEvery = v
			case "full_every":
				c.Reconcile.FullEvery = v
			case "skew":
				c.Reconcile.Skew = v
			case "probe_every", "lease":
				if v <= 0 {
					d.Errorf(g.Value, g.Path, "use a positive duration such as 1m, or remove the key for the default", "must be positive")
					continue
				}
				if g.Key == "probe_every" {
					c.Reconcile.ProbeEvery = v
				} else {
					c.Reconcile.Lease = v
				}
			}
		}
	}
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func parseWebhooks(d *yamlnode.Node, f yamlnode.Field) []Webhook {
	if f.Value.Kind != yaml.SequenceNode {
		d.Errorf(f.Value, f.Path, "write a list: `webhooks:` then `- url: ...` entries", "must be a list")
		return nil
	}
	var out []Webhook
	paths := map[string]string{}
	for i, n := range f.Value.Content {
		p := fmt.Sprintf("%s[%d]", f.Path, i)
		w := Webhook{Name: fmt.Sprintf("webhooks[%d]", i)}
		var urlN, keysN, pathN *yaml.Node
		for _, g := range d.Fields(n, p, "url", "path", "signing_keys", "basic_auth") {
			switch g.Key {
			case "url":
				w.URL, urlN = d.String(g.Value, g.Path), g.Value
			case "path":
				w.Path, pathN = d.String(g.Value, g.Path), g.Value
			case "signing_keys":
				keysN = g.Value
				w.SigningKeys = d.StringList(g.Value, g.Path)
				for j, k := range w.SigningKeys {
					if k == "" {
						d.Errorf(g.Value, fmt.Sprintf("%s[%d]", g.Path, j), "set it to the webhook's secret from the Appwrite console (or remove the entry)", "empty signing key")
					}
				}
			case "basic_auth":
				for _, h := range d.Fields(g.Value, g.Path, "username", "password") {
					if h.Key == "username" {
						w.BasicUser = d.String(h.Value, h.Path)
					} else {
						d.Redact(h.Value, hideSecret)
						w.BasicPass = d.String(h.Value, h.Path)
					}
				}
				if (w.BasicUser == "") != (w.BasicPass == "") {
					d.Errorf(g.Value, g.Path, "set both username and password (Appwrite sends basic auth only when both are set), or neither", "basic_auth needs both username and password")
				}
			}
		}
		if w.URL == "" {
			d.Errorf(n, p+".url", "copy the URL exactly as typed into the Appwrite webhook settings", "url is required")
		} else if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.Errorf(urlN, p+".url", "write an absolute http(s) URL exactly as typed into Appwrite, e.g. https://sync.example.com/webhooks/appwrite", "not an absolute http(s) URL")
		} else if w.Path == "" {
			w.Path = u.EscapedPath()
			if w.Path == "" {
				w.Path = "/"
			}
		}
		route, err := webhook.RoutePath(w.Path)
		if err != nil && w.Path != "" {
			at, key := pathN, p+".path"
			if at == nil {
				at, key = urlN, p+".url" // derived from the url
			}
			d.Errorf(at, key, "write the path as it appears in the URL Appwrite calls", "%v", err)
		}
		if len(w.SigningKeys) == 0 {
			at := keysN
			if at == nil {
				at = n
			}
			d.Errorf(at, p+".signing_keys", "add the webhook's secret (Appwrite console → webhook → Signature key), e.g. signing_keys: [\"${APPWRITE_WEBHOOK_SECRET}\"]", "at least one signing key is required")
		}
		if prev, dup := paths[route]; dup && route != "" {
			d.Errorf(n, p+".path", "give each webhook its own path (set `path:`)", "path %s is already used by %s", w.Path, prev)
		}
		paths[route] = w.Name
		out = append(out, w)
	}
	return out
}

func durations(d *yamlnode.Node, f yamlnode.Field, into map[string]*time.Duration) {
	keys := make([]string, 0, len(into))
	for k := range into {
		keys = append(keys, k)
	}
	for _, g := range d.Fields(f.Value, f.Path, sortedKeys(keys)...) {
		if v, ok := d.Duration(g.Value, g.Path); ok {
			*into[g.Key] = v
		}
	}
}

func positiveInt(d *yamlnode.Node, g yamlnode.Field) int {
	v, ok := d.Int(g.Value, g.Path)
	if !ok {
		return 0
	}
	if v <= 0 || v > 1<<31 {
		d.Errorf(g.Value, g.Path, "use a positive number", "must be positive")
		return 0
	}
	return int(v)
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

func oneOf(s string, opts ...string) bool {
	for _, o := range opts {
		if s == o {
			return true
		}
	}
	return false
}

func sortedKeys(ks []string) []string {
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
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
