package ledger

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/audit"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
)

// auditStmt names audit.InsertSQL's prepared statement on each state store connection.
const auditStmt = "appwrite_sync_record_audit"

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
// the insert's lock order, once per digest.
func auditOf(reqs []*request) *auditGroup {
	var g *auditGroup
	var es []*connector.AuditEntry
	for _, q := range reqs {
		if q.ch.Audit == nil {
			continue
		}
		if g == nil {
			g = &auditGroup{inserted: map[string]bool{}}
		}
		g.reqs = append(g.reqs, q)
		es = append(es, q.ch.Audit)
	}
	if g == nil {
		return nil
	}
	es = audit.SortEntries(es)
	n := len(es)
	d, pl := make([][]byte, n), make([][]byte, n)
	ra := make([]time.Time, n)
	w, p, u, ev := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	size := 7*arrayHeaderLen + 7*4*n + n*8
	for i, e := range es {
		d[i], ra[i], w[i], p[i], u[i], ev[i], pl[i] = e.Digest, e.ReceivedAt, e.WebhookID, e.ProjectID, e.UserID, e.Events, e.Payload
		size += len(d[i]) + len(w[i]) + len(p[i]) + len(u[i]) + len(ev[i]) + len(pl[i])
	}
	buf := make([]byte, 0, size)
	g.params = make([][]byte, 0, 7)
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
