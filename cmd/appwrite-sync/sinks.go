package main

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	pgsink "github.com/appwrite-sync/appwrite-sync/connector/sink/postgres"
)

// buildSinks creates a sink for each destination some table is mapped to.
func buildSinks(cfg *config.Config, wh *pgxpool.Pool, log *logrus.Entry) []sink.Sink {
	var out []sink.Sink
	hasPG := false
	for _, t := range cfg.Mapping.Tables {
		if t.PG != nil {
			hasPG = true
		}
	}
	if hasPG {
		out = append(out, pgsink.New(wh, cfg.Mapping, log))
	}
	return out
}
