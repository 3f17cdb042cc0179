package meilisink

import "github.com/appwrite-sync/appwrite-sync/connector"

// Fingerprint implements sink.Sink: the fingerprint of the table's meilisearch section.
func (s *Sink) Fingerprint(key connector.TableKey) string {
	if t := s.m.Lookup(key); t != nil && t.Meili != nil {
		return t.Meili.Fingerprint
	}
	return ""
}

// BatchSize implements sink.Batcher: the engine hands Apply at most one task's documents
// (Options.BatchSize).
func (s *Sink) BatchSize() int { return s.opts.BatchSize }
