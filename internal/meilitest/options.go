package meilitest

import (
	"fmt"
	"time"
)

const (
	// DefaultPayloadLimit is Meilisearch's default --http-payload-size-limit, in bytes.
	DefaultPayloadLimit int64 = 100_000_000
	// DefaultVersion is the pkgVersion GET /version reports.
	DefaultVersion = "1.26.0"
)

// Options configures a Server. The zero value is a server without a master key, with the
// default payload limit and tasks processed as fast as possible.
type Options struct {
	// MasterKey, when set, protects every route but GET /health: requests must carry
	// "Authorization: Bearer <MasterKey>". Default: "" (no authentication, any header accepted).
	MasterKey string
	// PayloadLimit is the largest accepted request body in bytes, measured after
	// decompression. Default (0): DefaultPayloadLimit.
	PayloadLimit int64
	// TaskDelay is how long each task stays "processing" before it is applied. Default: 0.
	TaskDelay time.Duration
	// Version is the pkgVersion reported by GET /version. Default: DefaultVersion.
	Version string
	// Now is the clock used for task and index timestamps. Default: time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of o with every unset field filled with its default.
func (o Options) WithDefaults() Options {
	if o.PayloadLimit == 0 {
		o.PayloadLimit = DefaultPayloadLimit
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func (o Options) validate() error {
	if o.PayloadLimit < 0 {
		return fmt.Errorf("meilitest: PayloadLimit is %d: must be positive (or 0 for the default %d)", o.PayloadLimit, DefaultPayloadLimit)
	}
	if o.TaskDelay < 0 {
		return fmt.Errorf("meilitest: TaskDelay is %s: must not be negative", o.TaskDelay)
	}
	return nil
}
