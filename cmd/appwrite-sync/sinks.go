package main

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/meilisink"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/pgsink"
)

// buildSinks creates a sink for each destination some table is mapped to.
func buildSinks(cfg *config.Config, wh *pgxpool.Pool, log *logrus.Entry) ([]sink.Sink, error) {
	var out []sink.Sink
	hasPG, hasMeili := false, false
	for _, t := range cfg.Mapping.Tables {
		hasPG = hasPG || t.PG != nil
		hasMeili = hasMeili || t.Meili != nil
	}
	if hasPG {
		out = append(out, pgsink.NewWithOptions(wh, cfg.Mapping, pgsink.Options{BatchSize: cfg.Warehouse.BatchSize, Log: log}))
	}
	if hasMeili {
		ms, err := meilisink.New(meilisink.Options{URL: cfg.Meili.URL, APIKey: cfg.Meili.APIKey, Mapping: cfg.Mapping,
			BatchSize: cfg.Meili.BatchSize, BatchBytes: cfg.Meili.BatchBytes, Timeout: cfg.Meili.Timeout, Log: log})
		if err != nil {
			return nil, fmt.Errorf("meilisearch: %w", err)
		}
		out = append(out, ms)
	}
	return out, nil
}
