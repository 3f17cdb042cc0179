package backfill

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// run is one execution of a claimed job in this process.
type run struct {
	m      *Manager
	job    *Job
	cancel context.CancelCauseFunc
	log    *logrus.Entry
	// firstQuery is the scan's query as it started: rowsTotal sizes the table from it.
	firstQuery appwrite.ListQuery
}

func (r *run) do(ctx context.Context) error {
	j := r.job
	key, err := connector.ParseTableKey(j.Table)
	if err != nil {
		return connector.Permanent("bad table key", err)
	}
	t := r.m.opts.Mapping.Lookup(key)
	if t == nil {
		return connector.Permanent("the mapping changed since the job was queued", r.m.checkTable(key))
	}
	for {
		if j.Phase == phaseScan {
			if err := r.scan(ctx, key, t); err != nil {
				return err
			}
			if j.Mode == ModeFull {
				if err := r.advance(ctx, progress{total: -1, phase: phaseDeletes}); err != nil {
					return err
				}
				j.Phase = phaseDeletes
			}
		}
		if j.Mode != ModeFull {
			return nil
		}
		lost, err := r.m.store.seenLost(ctx, j.ID)
		if err != nil {
			return fmt.Errorf("checking the ids the scan saw: %w: %w", ledger.ErrUnavailable, err)
		}
		if !lost {
			return r.deletes(ctx, key)
		}
		// The state store lost the unlogged ids (it crashed, or a standby took over): scan
		// again rather than delete the rows they named.
		r.log.Warn("the ids this full job's scan saw were lost (the state store restarted after a crash, or failed over): scanning the table again")
		ok, err := r.m.store.rescan(ctx, j.ID, r.m.opts.Owner)
		if err != nil {
			return fmt.Errorf("restarting the scan: %w: %w", ledger.ErrUnavailable, err)
		}
		if !ok {
			if cause := r.m.checkHeld(ctx, j.ID, r.cancel); cause != nil {
				return cause
			}
			return errLeaseLost
		}
		j.Checkpoint, j.Phase = "", phaseScan
	}
}

// scan reads the table page by page after the checkpoint and records each page. While one
// page is fetched, up to RecordAhead earlier ones are recorded concurrently (the state store
// is the bottleneck of a backfill, and pages never share a row); the checkpoint advances in
// page order, over pages recorded without a gap only.
func (r *run) scan(ctx context.Context, key connector.TableKey, t *mapping.Table) error {
	j := r.job
	q := appwrite.ListQuery{Limit: r.m.opts.PageSize, AfterSequence: j.Checkpoint, Select: relationSelect(t),
		WithTotal: j.Checkpoint == "" && j.Total == nil}
	if j.Mode == ModeIncremental && j.Since != nil {
		q.UpdatedSince = *j.Since
	}
	r.firstQuery = q
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	pages := make(chan appwrite.Page, 1)
	scanErr := make(chan error, 1)
	go func() {
		err := r.m.opts.Client.ScanParallel(sctx, key, q, r.m.opts.ParallelPages, func(p appwrite.Page) error {
			select {
			case pages <- p:
				return nil
			case <-sctx.Done():
				return sctx.Err()
			}
		})
		close(pages)
		scanErr <- err
	}()

	// A page handed to the recorder is recorded to the end even when the job stops: the
	// checkpoint then covers it, and a resumed job neither reads nor counts it again.
	rctx := context.WithoutCancel(ctx)
	futures := make(chan *recording, r.m.opts.RecordAhead-1)
	go func() {
		defer close(futures)
		first := true
		for p := range pages {
			if sctx.Err() != nil {
				continue // stopping: let the scan end without recording more
			}
			f := &recording{done: make(chan struct{})}
			futures <- f // blocks while RecordAhead pages are in flight
			go func(p appwrite.Page, first bool) {
				defer close(f.done)
				f.prog, f.err = r.record(rctx, key, p, first)
			}(p, first)
			first = false
		}
	}()
	var err error
	for f := range futures {
		<-f.done
		if err != nil {
			continue // draining after a failure
		}
		if f.err == nil {
			f.err = r.advance(rctx, f.prog)
		}
		if f.err != nil {
			err = f.err
			stop()
			continue
		}
		j.Checkpoint = f.prog.checkpoint
		if m := r.m.opts.Metrics; m != nil {
			m.BackfillRows.WithLabelValues(j.Table, "read").Add(float64(f.prog.read))
			m.BackfillRows.WithLabelValues(j.Table, "changed").Add(float64(f.prog.changed))
		}
	}
	if serr := <-scanErr; err == nil {
		err = serr
	}
	return err
}

// source is the Change.Source of what this job records: backfill for a job a person started
// (admin API, the backfill command), reconcile for the scheduled and automatic ones.
func (r *run) source() string {
	if r.job.Trigger == TriggerAdmin || r.job.Trigger == "" {
		return connector.SourceBackfill
	}
	return connector.SourceReconcile
}

// recording is one page being recorded.
type recording struct {
	done chan struct{}
	prog progress
	err  error
}

// record records one page through the version guard and returns what the checkpoint must
// say once it and every page before it are recorded.
func (r *run) record(ctx context.Context, key connector.TableKey, p appwrite.Page, first bool) (progress, error) {
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	changes := make([]connector.Change, len(p.Rows))
	prog := progress{read: len(p.Rows), total: -1}
	for i, raw := range p.Rows {
		id, ua, seq, err := appwrite.RowMeta(raw)
		if err != nil {
			return prog, connector.Permanent(fmt.Sprintf("appwrite returned a row that cannot be read (after $sequence %q)", prog.checkpoint), err)
		}
		// Authoritative: the row as Appwrite holds it now, which wins a tie at its $updatedAt
		// against whatever webhook recorded another content there (see package ledger).
		changes[i] = connector.Change{Key: key, RowID: id, Op: connector.OpUpsert, UpdatedAt: ua, Sequence: seq,
			Action: ActionBackfill, Source: r.source(), Row: raw, Authoritative: true}
		if ua.After(prog.maxUpdatedAt) {
			prog.maxUpdatedAt = ua
		}
		prog.checkpoint = seq
	}
	if p.Through != "" {
		prog.checkpoint = p.Through // a window may end past its last row, or hold none
	}
	if len(changes) == 0 {
		return prog, nil
	}
	res, err := r.m.opts.Recorder.RecordBatch(ctx, changes)
	if err != nil {
		return prog, fmt.Errorf("recording rows up to $sequence %q: %w", prog.checkpoint, err)
	}
	prog.changed = count(res, ledger.Recorded)
	if r.job.Mode == ModeFull {
		// A row this scan advanced has recorded_at after the scan began, which already keeps
		// it from the deletes; only the rows the ledger held at this version or newer must be
		// remembered. A first backfill so writes (almost) no seen ids at all.
		for i, x := range res {
			if x != ledger.Recorded {
				prog.seen = append(prog.seen, changes[i].RowID)
			}
		}
	}
	if first {
		prog.total = r.rowsTotal(ctx, key, r.firstQuery, p.Total)
	}
	return prog, nil
}

// deletes records a delete for each live ledger row the scan did not see and nothing changed
// since the scan began. Each delete carries the row's stored version: a delete orders after
// an upsert of the same instant, and a newer version (a webhook that re-created the row)
// still wins under the version guard.
func (r *run) deletes(ctx context.Context, key connector.TableKey) error {
	if !r.job.AllowMassDelete {
		unseen, live, read, err := r.m.store.unseenCount(ctx, r.job)
		if err != nil {
			return fmt.Errorf("counting rows gone from the source: %w", err)
		}
		if massDelete(unseen, live) {
			return massDeleteError(r.job.Table, unseen, live, read)
		}
	}
	after := ""
	for {
		cands, err := r.m.store.unseen(ctx, r.job, after, deleteBatch)
		if err != nil {
			return fmt.Errorf("finding rows gone from the source: %w", err)
		}
		if len(cands) == 0 {
			return nil
		}
		changes := make([]connector.Change, len(cands))
		for i, c := range cands {
			changes[i] = connector.Change{Key: key, RowID: c.rowID, Op: connector.OpDelete, UpdatedAt: c.updatedAt,
				Action: ActionBackfill, Source: r.source(), Row: json.RawMessage(c.row)}
			if c.sequence != nil {
				changes[i].Sequence = *c.sequence
			}
		}
		res, err := r.m.opts.Recorder.RecordBatch(ctx, changes)
		if err != nil {
			return fmt.Errorf("recording deletes of rows gone from the source: %w", err)
		}
		deleted := count(res, ledger.Recorded)
		if err := r.advance(ctx, progress{deleted: deleted, total: -1}); err != nil {
			return err
		}
		if deleted > 0 {
			r.log.WithField("rows", deleted).Info("rows gone from the source recorded as deletes")
			if m := r.m.opts.Metrics; m != nil {
				m.BackfillRows.WithLabelValues(r.job.Table, "deleted").Add(float64(deleted))
			}
		}
		after = cands[len(cands)-1].rowID
	}
}

// advance stores progress; when the job is no longer this process's (cancelled, taken over)
// it ends the job with that reason.
func (r *run) advance(ctx context.Context, p progress) error {
	ok, err := r.m.store.advance(ctx, r.job.ID, r.m.opts.Owner, r.m.opts.Lease, p)
	if err != nil {
		return fmt.Errorf("saving the job's checkpoint: %w: %w", ledger.ErrUnavailable, err)
	}
	if ok {
		return nil
	}
	if cause := r.m.checkHeld(ctx, r.job.ID, r.cancel); cause != nil {
		return cause
	}
	return errLeaseLost
}

func count(res []ledger.Result, want ledger.Result) int {
	n := 0
	for _, x := range res {
		if x == want {
			n++
		}
	}
	return n
}

// relationSelect returns the select of a list request that also loads the nested objects the
// mapping reads through (a source path such as meta.name) when the column is not a declared
// relationship. A declared relationship (`relationships:`) needs no selection: its links are
// the ids the row holds, and the values are joined from the ledger at delivery, so loading
// the related rows would only make the backfill copy differ from the webhook copy. nil when
// nothing needs selecting.
func relationSelect(t *mapping.Table) []string {
	if t == nil || t.PG == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, r := range t.Relationships() {
		seen[r.Column] = true
	}
	var sel []string
	for _, c := range t.PG.Columns {
		first, _, nested := strings.Cut(c.From, ".")
		if !nested || first == "" || strings.HasPrefix(first, "$") || seen[first] {
			continue
		}
		seen[first] = true
		sel = append(sel, first+".*")
	}
	if len(sel) == 0 {
		return nil
	}
	sort.Strings(sel)
	return append([]string{"*"}, sel...)
}

// massDeleteMin: a full job may always record this many deletes; the half-of-the-table rule
// applies above it.
const massDeleteMin = 10

// massDelete reports whether recording unseen deletes would remove more than half of the live
// rows the ledger holds for the table (and more than massDeleteMin). A full scan that read
// nothing, or only what an API key without access to the rows can see, would otherwise
// delete every row it missed from both sinks, and the tombstones would outrank the rows when
// they are read again at the same $updatedAt.
func massDelete(unseen, live int64) bool { return unseen > massDeleteMin && 2*unseen > live }

func massDeleteError(table string, unseen, live, read int64) error {
	return connector.Permanent(fmt.Sprintf("refusing to delete %d of the %d rows of %s: the full scan read %d rows, and "+
		"deleting more than half of a table takes a job started with allow_mass_delete. If the API key may lack access "+
		"to the rows (scope rows.read, document security, another project), fix it and run the job again; if the rows "+
		"are really gone, run it with {\"table\": %q, \"mode\": \"full\", \"allow_mass_delete\": true} "+
		"(CLI: appwrite-sync backfill --table %s --allow-mass-delete)", unseen, live, table, read, table, table), nil)
}
