package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// inTx runs fn between BEGIN and COMMIT on conn, rolling back when fn fails.
func inTx(ctx context.Context, conn *pgx.Conn, fn func() error) error {
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		return err
	}
	if err := fn(); err != nil {
		if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			conn.PgConn().Close(context.WithoutCancel(ctx)) // the pool then drops this connection
		}
		return err
	}
	_, err := conn.Exec(ctx, "COMMIT")
	return err
}

// deleteLinksSQL forgets the links of the columns a recorded row holds (a column its payload
// leaves out keeps the links recorded before).
const deleteLinksSQL = `DELETE FROM appwrite_sync.ledger_links k
    USING unnest($1::text[], $2::text[], $3::text[]) AS d(t, id, col)
    WHERE k.from_table = d.t AND k.from_id = d.id AND k.col = d.col`

// insertLinksSQL writes the links of the recorded rows.
const insertLinksSQL = `INSERT INTO appwrite_sync.ledger_links (from_table, from_id, col, ord, to_table, to_id)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[])
    ON CONFLICT (from_table, from_id, col, ord) DO UPDATE SET to_table = excluded.to_table, to_id = excluded.to_id`

// enqueueFanoutSQL queues the fan-out of recorded rows that other rows may link to. It does
// not look for such rows: a row linking to it may be committing concurrently, unseen by this
// transaction; the fan-out worker, which runs after this commit, sees it or the delivery of
// that row (after its own commit) joins this version.
const enqueueFanoutSQL = `INSERT INTO appwrite_sync.ledger_fanout (table_key, row_id, depth)
    SELECT * FROM unnest($1::text[], $2::text[], $3::int[])
    ON CONFLICT (table_key, row_id, depth) WHERE after_table IS NULL DO NOTHING`

// linkWork returns what a group's transaction writes besides the ledger: the links of the
// recorded rows of tables that declare relationships, and the fan-out of the recorded rows
// of tables others link to. nil when the group holds no such table (no explicit
// transaction then). It reads the results the record statement set: only a row whose
// version advanced (written and Recorded) changes its links.
func (r *Recorder) linkWork(winners []*request, written []bool) func(context.Context, *pgx.Conn) error {
	m := r.opts.Relations
	if m == nil || !m.HasRelationships() {
		return nil
	}
	type kind struct{ rels, related bool }
	kinds := map[connector.TableKey]kind{}
	some := false
	for _, q := range winners {
		k, ok := kinds[q.ch.Key]
		if !ok {
			k = kind{len(m.RelationshipsOf(q.ch.Key)) > 0, m.IsRelated(q.ch.Key)}
			kinds[q.ch.Key] = k
		}
		some = some || k.rels || k.related
	}
	if !some {
		return nil
	}
	return func(ctx context.Context, conn *pgx.Conn) error {
		var del struct{ t, id, col []string }
		var ins struct {
			t, id, col, toT, toID []string
			ord                   []int32
		}
		var fan struct {
			t, id []string
			depth []int32
		}
		for i, q := range winners {
			if !written[i] || q.result != Recorded {
				continue
			}
			k := kinds[q.ch.Key]
			if k.related {
				fan.t, fan.id, fan.depth = append(fan.t, q.table), append(fan.id, q.ch.RowID), append(fan.depth, 0)
			}
			if !k.rels {
				continue
			}
			t := m.Lookup(q.ch.Key)
			links, present, err := t.Links(q.ch.Key, q.ch.Row)
			if err != nil {
				// The row hashed, so it is one JSON object: this does not happen. Keep the
				// links known before rather than fail the group.
				r.opts.Log.WithError(err).WithField("row", fmt.Sprintf("%s/%.200s", q.table, q.ch.RowID)).Warn("links of a recorded row not read")
				continue
			}
			for _, c := range present {
				del.t, del.id, del.col = append(del.t, q.table), append(del.id, q.ch.RowID), append(del.col, c)
			}
			for _, l := range links {
				ins.t, ins.id, ins.col = append(ins.t, q.table), append(ins.id, q.ch.RowID), append(ins.col, l.Column)
				ins.ord, ins.toT, ins.toID = append(ins.ord, int32(l.Ord)), append(ins.toT, l.To.String()), append(ins.toID, l.ID)
			}
		}
		b := &pgx.Batch{}
		if len(del.t) > 0 {
			b.Queue(deleteLinksSQL, del.t, del.id, del.col)
		}
		if len(ins.t) > 0 {
			b.Queue(insertLinksSQL, ins.t, ins.id, ins.col, ins.ord, ins.toT, ins.toID)
		}
		if len(fan.t) > 0 {
			b.Queue(enqueueFanoutSQL, fan.t, fan.id, fan.depth)
		}
		if b.Len() == 0 {
			return nil
		}
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("recording links: %w", err)
		}
		return nil
	}
}

// rebuildPage is how many rows RebuildLinks reads again per transaction.
const rebuildPage = 1000

// RebuildLinks reads again, from the stored source rows, the links of every table in the
// ledger whose relationships changed since its links were read (mapping.Table.LinksFingerprint
// against ledger_links_spec), and forgets the links of tables that no longer declare any. It
// runs before the re-projection of a mapping change, so the rows re-projected because a
// relationship was added join their related rows. Each page locks its ledger rows, so a new
// version recorded meanwhile writes its links after the page, not under it. A row whose newest
// version left the column out loses the links an older version gave it (only the newest
// source row is kept). It returns the rows read.
func (a *Admin) RebuildLinks(ctx context.Context, m *mapping.Mapping) (int64, error) {
	tables, err := a.LedgerTables(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing ledger tables: %w", err)
	}
	var total int64
	for _, tk := range tables {
		k, err := connector.ParseTableKey(tk)
		if err != nil {
			continue
		}
		var old string
		err = a.pool.QueryRow(ctx, `SELECT fingerprint FROM appwrite_sync.ledger_links_spec WHERE table_key = $1`, tk).Scan(&old)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return total, fmt.Errorf("reading the links spec of %s: %w", tk, err)
		}
		t := m.Lookup(k)
		fp := ""
		if t != nil {
			fp = t.LinksFingerprint()
		}
		if fp == old {
			continue
		}
		if fp == "" {
			err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `DELETE FROM appwrite_sync.ledger_links WHERE from_table = $1`, tk); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `DELETE FROM appwrite_sync.ledger_links_spec WHERE table_key = $1`, tk)
				return err
			})
			if err != nil {
				return total, fmt.Errorf("forgetting the links of %s: %w", tk, err)
			}
			continue
		}
		n, err := a.rebuildTable(ctx, k, t)
		total += n
		if err != nil {
			return total, fmt.Errorf("reading the links of %s again: %w", tk, err)
		}
		_, err = a.pool.Exec(ctx, `INSERT INTO appwrite_sync.ledger_links_spec (table_key, fingerprint) VALUES ($1, $2)
            ON CONFLICT (table_key) DO UPDATE SET fingerprint = excluded.fingerprint, updated_at = now()`, tk, fp)
		if err != nil {
			return total, fmt.Errorf("recording the links spec of %s: %w", tk, err)
		}
	}
	return total, nil
}

// rebuildTable reads the links of every row of table k again, page by page.
func (a *Admin) rebuildTable(ctx context.Context, k connector.TableKey, t *mapping.Table) (int64, error) {
	tk := k.String()
	after := ""
	var total int64
	for {
		n := 0
		err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT row_id, `+SourceSQL+` FROM appwrite_sync.ledger l
                WHERE table_key = $1 AND row_id > $2 ORDER BY row_id LIMIT $3 FOR UPDATE`, tk, after, rebuildPage)
			if err != nil {
				return err
			}
			var ids []string
			var ins struct {
				id, col, toT, toID []string
				ord                []int32
			}
			for rows.Next() {
				var id string
				var src []byte
				if err := rows.Scan(&id, &src); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
				links, _, err := t.Links(k, src)
				if err != nil {
					continue // not an object: it links to nothing
				}
				for _, l := range links {
					ins.id, ins.col, ins.ord = append(ins.id, id), append(ins.col, l.Column), append(ins.ord, int32(l.Ord))
					ins.toT, ins.toID = append(ins.toT, l.To.String()), append(ins.toID, l.ID)
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
			n = len(ids)
			if n == 0 {
				return nil
			}
			after = ids[n-1]
			if _, err := tx.Exec(ctx, `DELETE FROM appwrite_sync.ledger_links WHERE from_table = $1 AND from_id = ANY($2)`, tk, ids); err != nil {
				return err
			}
			if len(ins.id) == 0 {
				return nil
			}
			tks := make([]string, len(ins.id))
			for i := range tks {
				tks[i] = tk
			}
			_, err = tx.Exec(ctx, insertLinksSQL, tks, ins.id, ins.col, ins.ord, ins.toT, ins.toID)
			return err
		})
		total += int64(n)
		if err != nil || n < rebuildPage {
			return total, err
		}
	}
}
