package pgsink

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// BatchSizeDefault is Options.BatchSize when unset (warehouse.batch_size).
const BatchSizeDefault = 1000

// Options configures a Sink beyond its pool and mapping.
type Options struct {
	// BatchSize is the most rows one Apply writes (sink.Batcher). Default BatchSizeDefault.
	BatchSize int
	// Log receives the sink's messages. Default: the standard logger.
	Log *logrus.Entry
}

// NewWithOptions is New with every option.
func NewWithOptions(pool *pgxpool.Pool, m *mapping.Mapping, o Options) *Sink {
	s := New(pool, m, o.Log)
	s.batchSize = o.BatchSize
	if s.batchSize <= 0 {
		s.batchSize = BatchSizeDefault
	}
	return s
}

// BatchSize implements sink.Batcher.
func (s *Sink) BatchSize() int {
	if s.batchSize <= 0 {
		return BatchSizeDefault
	}
	return s.batchSize
}

// Fingerprint implements sink.Sink: the fingerprint of the table's postgres section.
func (s *Sink) Fingerprint(key connector.TableKey) string {
	if t := s.m.Lookup(key); t != nil && t.PG != nil {
		return t.PG.Fingerprint
	}
	return ""
}
