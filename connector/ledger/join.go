package ledger

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// Joiner fills the relationship columns of rows about to be delivered with the newest
// recorded versions of the rows they link to (EngineOptions.Join), so the mapping's
// `author.name` reads the author as the ledger holds it now, whatever the webhook of the
// post carried.
type Joiner struct {
	pool  *pgxpool.Pool
	m     *mapping.Mapping
	depth int
}

// NewJoiner returns the joiner of mapping m's relationships; nil when m declares none.
func NewJoiner(pool *pgxpool.Pool, m *mapping.Mapping) *Joiner {
	if m == nil || !m.HasRelationships() {
		return nil
	}
	return &Joiner{pool: pool, m: m, depth: m.JoinDepth()}
}

// joinSQL reads, for a batch of rows, their links and the newest version of each linked row
// (none when the ledger does not hold it): one query per batch and level of a chain.
const joinSQL = `SELECT k.from_table, k.from_id, k.col, k.ord, k.to_table, k.to_id, COALESCE(l.op, 0), ` + SourceSQL + `
    FROM unnest($1::text[], $2::text[]) AS d(t, id)
    JOIN appwrite_sync.ledger_links k ON k.from_table = d.t AND k.from_id = d.id
    LEFT JOIN appwrite_sync.ledger l ON l.table_key = k.to_table AND l.row_id = k.to_id`

type joinLink struct {
	col string
	ord int
	to  rowKey
}

// joined is what the queries found: per row, its links; per linked row, its source (nil
// when unknown or deleted).
type joined struct {
	links map[rowKey][]joinLink
	rows  map[rowKey][]byte
}

// Join replaces, in each item's row, every relationship column its table declares with the
// linked rows: one object for a to-one link, a list for a to-many one, null for a row the
// ledger does not hold or holds deleted; recursively for chains, as deep as the mapping
// reads (mapping.JoinDepth). The links are the recorded ones (ledger_links), not what the
// row's payload holds, so a payload that left the column out keeps the links of the row's
// previous version.
func (j *Joiner) Join(ctx context.Context, items []sink.Item) error {
	if j == nil {
		return nil
	}
	got := joined{links: map[rowKey][]joinLink{}, rows: map[rowKey][]byte{}}
	var ts, ids []string
	for _, it := range items {
		if len(j.m.RelationshipsOf(it.Key)) > 0 {
			ts, ids = append(ts, it.Key.String()), append(ids, it.RowID)
		}
	}
	if len(ts) == 0 {
		return nil
	}
	for level := 0; level < j.depth && len(ts) > 0; level++ {
		next, err := j.read(ctx, ts, ids, &got)
		if err != nil {
			return err
		}
		ts, ids = next[0], next[1]
	}
	for i := range items {
		it := &items[i]
		if len(j.m.RelationshipsOf(it.Key)) == 0 {
			continue
		}
		row, err := j.fill(it.Key, rowKey{it.Key.String(), it.RowID}, it.Row, 0, &got)
		if err != nil {
			return connector.Permanent("joining related rows", err)
		}
		it.Row = row
	}
	return nil
}

// read runs joinSQL for the rows ts/ids and returns the linked rows to read next (those of
// tables that declare relationships themselves, not read yet).
func (j *Joiner) read(ctx context.Context, ts, ids []string, got *joined) ([2][]string, error) {
	var next [2][]string
	rows, err := j.pool.Query(ctx, joinSQL, ts, ids)
	if err != nil {
		return next, fmt.Errorf("reading related rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var from, to rowKey
		var l joinLink
		var op int16
		var src []byte
		if err := rows.Scan(&from.table, &from.id, &l.col, &l.ord, &to.table, &to.id, &op, &src); err != nil {
			return next, fmt.Errorf("reading related rows: %w", err)
		}
		l.to = to
		got.links[from] = append(got.links[from], l)
		if _, seen := got.rows[to]; seen {
			continue
		}
		if connector.Op(op) != connector.OpUpsert {
			src = nil // unknown or deleted: null
		}
		got.rows[to] = src
		if src == nil {
			continue
		}
		if k, err := connector.ParseTableKey(to.table); err == nil && len(j.m.RelationshipsOf(k)) > 0 {
			next[0], next[1] = append(next[0], to.table), append(next[1], to.id)
		}
	}
	if err := rows.Err(); err != nil {
		return next, fmt.Errorf("reading related rows: %w", err)
	}
	return next, nil
}

// fill returns row with its relationship columns replaced by the linked rows (filled in turn
// while level+1 < depth).
func (j *Joiner) fill(key connector.TableKey, rk rowKey, row []byte, level int, got *joined) ([]byte, error) {
	rels := j.m.RelationshipsOf(key)
	if len(rels) == 0 || level >= j.depth {
		return row, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(row, &top); err != nil {
		return nil, err
	}
	links := got.links[rk]
	for _, r := range rels {
		var one json.RawMessage
		var list []json.RawMessage
		isList := len(top[r.Column]) > 0 && top[r.Column][0] == '['
		for _, l := range links {
			if l.col != r.Column {
				continue
			}
			v, err := j.related(l.to, level, got)
			if err != nil {
				return nil, err
			}
			if l.ord < 0 {
				one = v
				continue
			}
			isList = true
			for len(list) <= l.ord {
				list = append(list, json.RawMessage("null"))
			}
			list[l.ord] = v
		}
		switch {
		case isList:
			b, err := json.Marshal(list)
			if err != nil {
				return nil, err
			}
			if list == nil {
				b = []byte("[]")
			}
			top[r.Column] = b
		case one != nil:
			top[r.Column] = one
		default:
			top[r.Column] = json.RawMessage("null")
		}
	}
	return json.Marshal(top)
}

// related is the linked row k as JSON (filled for the next level), or null.
func (j *Joiner) related(k rowKey, level int, got *joined) (json.RawMessage, error) {
	src := got.rows[k]
	if src == nil {
		return json.RawMessage("null"), nil
	}
	key, err := connector.ParseTableKey(k.table)
	if err != nil {
		return nil, err
	}
	return j.fill(key, k, src, level+1, got)
}
