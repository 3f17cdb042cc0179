package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/appwrite-sync/appwrite-sync/connector"
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
			links, present, err := t.Links(q.ch.Key, q.ch.Op, q.ch.Row)
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
