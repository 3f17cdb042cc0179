package ledger

import (
	"bytes"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector/audit"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
)

// auditStmt names auditSQL's prepared statement on each state store connection.
const auditStmt = "appwrite_sync_record_audit"

// auditSQL is audit.InsertSQL for the entries of a group's row changes, which also writes a
// body once: an entry whose change kept a version of the row history in this transaction with
// the same bytes as the entry's payload (a row webhook's body is its row) is stored without
// its payload, naming the version instead ((tx, history_seq): the version's tx is the entry's,
// found through history_log); the delivery reads the body from the version (package audit).
// The pipeline runs the history insert first, so the probe sees the versions it kept. The
// payload is still parsed as jsonb here either way (the CASE), so a body jsonb refuses fails
// now, as it did, not at delivery. $8–$12 are the version of each entry's change.
const auditSQL = `
INSERT INTO appwrite_sync.audit_log (digest, received_at, webhook_id, project_id, user_id, events, payload, history_seq)
SELECT x.d, x.r, NULLIF(x.w, ''), NULLIF(x.p, ''), NULLIF(x.u, ''), string_to_array(x.ev, ','),
    CASE WHEN h.seq IS NULL THEN x.pl::jsonb END,
    CASE WHEN h.seq IS NULL THEN NULL WHEN x.pl::jsonb IS NOT NULL THEN h.seq END
FROM unnest($1::bytea[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::text[], $9::text[], $10::timestamptz[], $11::smallint[], $12::bytea[])
    WITH ORDINALITY AS x(d, r, w, p, u, ev, pl, tk, id, ua, op, vh, i)
LEFT JOIN LATERAL (SELECT v.seq FROM appwrite_sync.history v
    WHERE v.table_key = x.tk AND v.row_id = x.id AND v.updated_at = x.ua AND v.op = x.op AND v.hash = x.vh
        AND v.tx = pg_current_xact_id() AND v.source_row = x.pl) h ON true
ORDER BY x.i
ON CONFLICT (digest) DO NOTHING
RETURNING digest`

// auditGroup is the audit log insert of one group (Change.Audit): the entries of the
// deliveries that carried its changes, recorded in the same implicit transaction as the
// record statement, so an acknowledged change always has its entry and an audited change
// costs no commit of its own. A nil *auditGroup is a group without audited changes.
type auditGroup struct {
	reqs     []*request // the requests that carry an entry
	params   [][]byte
	inserted map[string]bool // digests the last attempt inserted
}

// auditOf builds the audit insert of a group: every entry its requests carry, whatever the
// ledger does with their changes (a stale or duplicate change's delivery is audited too), in
// the insert's lock order (audit.SortEntries: by digest), once per digest, each with the
// version of the change that carried it.
func auditOf(reqs []*request) *auditGroup {
	var g *auditGroup
	var qs []*request
	for _, q := range reqs {
		if q.ch.Audit == nil {
			continue
		}
		if g == nil {
			g = &auditGroup{inserted: map[string]bool{}}
		}
		g.reqs = append(g.reqs, q)
		qs = append(qs, q)
	}
	if g == nil {
		return nil
	}
	sort.SliceStable(qs, func(i, j int) bool { return bytes.Compare(qs[i].ch.Audit.Digest, qs[j].ch.Audit.Digest) < 0 })
	uniq := qs[:0]
	for i, q := range qs {
		if i > 0 && bytes.Equal(q.ch.Audit.Digest, qs[i-1].ch.Audit.Digest) {
			continue
		}
		uniq = append(uniq, q)
	}
	n := len(uniq)
	d, pl, vh := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	ra, ua := make([]time.Time, n), make([]time.Time, n)
	w, p, u, ev := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	tk, id, op := make([]string, n), make([]string, n), make([]int16, n)
	size := 12*arrayHeaderLen + 12*4*n + n*(8+8+2)
	for i, q := range uniq {
		e := q.ch.Audit
		d[i], ra[i], w[i], p[i], u[i], ev[i], pl[i] = e.Digest, e.ReceivedAt, e.WebhookID, e.ProjectID, e.UserID, e.Events, e.Payload
		tk[i], id[i], ua[i], op[i], vh[i] = q.table, q.ch.RowID, q.ch.UpdatedAt, int16(q.ch.Op), q.hash
		size += len(d[i]) + len(w[i]) + len(p[i]) + len(u[i]) + len(ev[i]) + len(pl[i]) + len(tk[i]) + len(id[i]) + len(vh[i])
	}
	buf := make([]byte, 0, size)
	g.params = make([][]byte, 0, 12)
	add := func(b []byte) {
		g.params = append(g.params, b[len(buf):len(b):len(b)])
		buf = b
	}
	add(appendBytesArray(buf, oidBytea, d))
	add(appendTimestamptzArray(buf, ra))
	add(appendTextArray(buf, oidText, w))
	add(appendTextArray(buf, oidText, p))
	add(appendTextArray(buf, oidText, u))
	add(appendTextArray(buf, oidText, ev))
	add(appendBytesArray(buf, oidText, pl))
	add(appendTextArray(buf, oidText, tk))
	add(appendTextArray(buf, oidText, id))
	add(appendTimestamptzArray(buf, ua))
	add(appendInt2Array(buf, op))
	add(appendBytesArray(buf, oidBytea, vh))
	return g
}

func (g *auditGroup) reset() {
	if g != nil {
		clear(g.inserted)
	}
}

func (g *auditGroup) insertedAny() bool { return g != nil && len(g.inserted) > 0 }

// count adds the group's entries to appwrite_sync_audit_entries_total: an entry is recorded
// once, by the first request that carried its digest; the others are duplicates.
func (g *auditGroup) count(m *metrics.Metrics) {
	if g == nil || m == nil {
		return
	}
	counted := make(map[string]bool, len(g.reqs))
	for _, q := range g.reqs {
		dg := string(q.ch.Audit.Digest)
		audit.CountEntry(m, g.inserted[dg] && !counted[dg])
		counted[dg] = true
	}
}

// byteaText decodes a bytea in Postgres's text output (hex format: a backslash, "x", the hex digits), as the pipeline
// returns it, to its bytes (as a map key).
func byteaText(v []byte) string {
	b, err := hex.DecodeString(strings.TrimPrefix(string(v), `\x`))
	if err != nil {
		return string(v)
	}
	return string(b)
}
