package mapping

import (
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/internal/yamlnode"
)

// History is postgres.history: besides the newest version in its table, every distinct version
// of a row goes to <table>_history (append-only), with the view <table>_history_changes.
//
//	history: true                  # keep every version
//	history: {retention: 2160h}    # keep the versions whose $updatedAt is within the last 90 days
//
// false (or leaving it out) turns it off; `history: {}` is the same as true.
type History struct {
	// Retention removes versions whose $updatedAt is older than this (checked hourly); 0 (the
	// default) keeps every version.
	Retention time.Duration
}

// Columns of every <table>_history table, in order. data is the version's mapped warehouse
// columns as one jsonb object.
const (
	HistColOp         = "op"     // text: upsert | delete
	HistColActor      = "actor"  // text: X-Appwrite-Webhook-User-Id; NULL when empty or unknown
	HistColEvent      = "event"  // text: the first, fully qualified event; NULL for versions read from the API
	HistColSource     = "source" // text: webhook | backfill | reconcile | replay
	HistColRecordedAt = "recorded_at"
	HistColData       = "data"
)

var historyKeys = []string{"retention"}

// describe says what the retention keeps, for the plan.
func (h *History) describe() string {
	if h.Retention == 0 {
		return "every version kept"
	}
	return "versions kept while their $updatedAt is within " + h.Retention.String()
}

func parseHistory(d *yamlnode.Node, n *yaml.Node, p string) *History {
	switch {
	case n != nil && n.Kind == yaml.ScalarNode && !yamlnode.IsNull(n):
		switch strings.ToLower(n.Value) {
		case "true", "yes", "on":
			return &History{}
		case "false", "no", "off":
			return nil
		}
	case n != nil && n.Kind == yaml.MappingNode:
		h := &History{}
		for _, f := range d.Fields(n, p, historyKeys...) {
			if f.Key == "retention" {
				h.Retention, _ = d.Duration(f.Value, f.Path)
			}
		}
		return h
	}
	d.Errorf(n, p, "write history: true, or history: {retention: 2160h} to keep 90 days of versions", "must be true, false or {retention: duration}")
	return nil
}

// HistoryTable is the warehouse table of the row history: <table>_history (shortened with a
// hash when that passes 63 bytes).
func (p *PGProjection) HistoryTable() string { return relName(p.Table, "history") }

// HistoryView is the view of the changes between consecutive versions: <table>_history_changes.
func (p *PGProjection) HistoryView() string { return relName(p.Table, "history_changes") }

// QualifiedHistoryTable returns the quoted "schema"."<table>_history".
func (p *PGProjection) QualifiedHistoryTable() string {
	return quote(p.Schema) + "." + quote(p.HistoryTable())
}

type relation struct{ name, what string }

// historyRelations are the relations the history adds to the schema.
func (p *PGProjection) historyRelations() []relation {
	return []relation{
		{p.HistoryTable(), "history table"},
		{relName(p.Table, "history_pkey"), "history primary key index"},
		{relName(p.Table, "history_updated_at_idx"), "history index"},
		{p.HistoryView(), "history view"},
	}
}

// HistoryDDL returns idempotent statements that create <table>_history and its view, or none
// when the history is off. The table's primary key is the version (id, updated_at, op,
// version_hash): writing a version again is a no-op (ON CONFLICT DO NOTHING).
//
// The view lists every version with the previous version of its row (previous_op,
// previous_updated_at, previous_data), the columns whose value differs from it
// (changed_columns; every column of the first version kept) and its place in the row's
// history (version_number), all in version order (updated_at, then an upsert before a delete,
// then recorded_at), whatever order the versions arrived in.
func (p *PGProjection) HistoryDDL() []string {
	if p.History == nil {
		return nil
	}
	q := p.QualifiedHistoryTable()
	table := "CREATE TABLE IF NOT EXISTS " + q + ` (
  "id" text NOT NULL,
  "op" text NOT NULL CHECK ("op" IN ('upsert', 'delete')),
  "updated_at" timestamptz NOT NULL,
  "version_hash" bytea NOT NULL,
  "actor" text,
  "event" text,
  "source" text NOT NULL,
  "recorded_at" timestamptz NOT NULL,
  "data" jsonb,
  "synced_at" timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ` + quote(relName(p.Table, "history_pkey")) + ` PRIMARY KEY ("id", "updated_at", "op", "version_hash")
)`
	index := "CREATE INDEX IF NOT EXISTS " + quote(relName(p.Table, "history_updated_at_idx")) + " ON " + q + ` ("updated_at")`
	view := strings.NewReplacer("{view}", quote(p.Schema)+"."+quote(p.HistoryView()), "{table}", q).Replace(`CREATE OR REPLACE VIEW {view} AS
SELECT v."id", v."op", v."updated_at", v."version_hash", v."actor", v."event", v."source", v."recorded_at", v."data",
  v.version_number, v.previous_op, v.previous_updated_at, v.previous_data,
  ARRAY(SELECT k.key FROM (
      SELECT jsonb_object_keys(COALESCE(v."data", '{}'::jsonb)) UNION SELECT jsonb_object_keys(COALESCE(v.previous_data, '{}'::jsonb))
    ) AS k(key)
    WHERE v."data" -> k.key IS DISTINCT FROM v.previous_data -> k.key ORDER BY k.key) AS changed_columns
FROM (
  SELECT h."id", h."op", h."updated_at", h."version_hash", h."actor", h."event", h."source", h."recorded_at", h."data",
    row_number() OVER w AS version_number,
    lag(h."op") OVER w AS previous_op,
    lag(h."updated_at") OVER w AS previous_updated_at,
    lag(h."data") OVER w AS previous_data
  FROM {table} h
  WINDOW w AS (PARTITION BY h."id" ORDER BY h."updated_at", h."op" = 'delete', h."recorded_at", h."version_hash")
) v`)
	return []string{"CREATE SCHEMA IF NOT EXISTS " + quote(p.Schema), table, index, view}
}
