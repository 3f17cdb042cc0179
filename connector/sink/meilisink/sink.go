package meilisink

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	meili "github.com/meilisearch/meilisearch-go"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// Name is the sink's id in the ledger, status and metrics.
const Name = "meilisearch"

// Sink writes mapped rows to Meilisearch indexes.
type Sink struct {
	opts   Options
	m      *mapping.Mapping
	log    *logrus.Entry
	client meili.ServiceManager
	poll   *poller
	guard  *guard
	sent   *sentLog

	indexes []*index // in mapping order
	byUID   map[string]*index

	closeOnce sync.Once
}

// index is one Meilisearch index and its setup state. Several tables share one index when
// their mapping says shared_index (New validated they agree on primary key and settings).
type index struct {
	uid        string
	primaryKey string
	settings   mapping.IndexSettings
	tables     []string // "database/table" of the tables writing it, for messages

	mu        sync.Mutex
	ready     bool
	problem   error // set when the index cannot be used as mapped (permanent until fixed)
	checkedAt time.Time
}

// New returns a sink for the mapping's tables that have a meilisearch section. It does not
// contact Meilisearch: Start does.
func New(opts Options) (*Sink, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	copts := []meili.Option{
		// The engine owns retries and backoff; the SDK's own (1, 2, 3 s on 502/503/504) would
		// hold a worker for seconds without the engine knowing.
		meili.DisableRetries(),
	}
	if opts.APIKey != "" {
		copts = append(copts, meili.WithAPIKey(opts.APIKey))
	}
	if opts.HTTPClient != nil {
		copts = append(copts, meili.WithCustomClient(opts.HTTPClient))
	}
	s := &Sink{opts: opts, m: opts.Mapping, log: opts.Log.WithField("sink", Name),
		client: meili.New(strings.TrimRight(opts.URL, "/"), copts...), guard: newGuard(guardCapacity),
		sent: newSentLog(), byUID: map[string]*index{}}
	for _, t := range opts.Mapping.Tables {
		if t.Meili == nil {
			continue
		}
		ix := s.byUID[t.Meili.Index]
		if ix == nil {
			ix = &index{uid: t.Meili.Index, primaryKey: t.Meili.PrimaryKey, settings: t.Meili.Settings}
			s.byUID[ix.uid] = ix
			s.indexes = append(s.indexes, ix)
		}
		ix.tables = append(ix.tables, t.Key().String())
	}
	// The poller outlives every Apply (it serves all of them); Close cancels it.
	s.poll = newPoller(context.Background(), s.client, opts.Timeout)
	return s, nil
}

// Name implements sink.Sink.
func (s *Sink) Name() string { return Name }

// Handles implements sink.Sink: the table's mapping has a meilisearch section.
func (s *Sink) Handles(key connector.TableKey) bool {
	t := s.m.Lookup(key)
	return t != nil && t.Meili != nil
}

// Close implements sink.Sink; safe to call twice.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		s.poll.close()
		s.client.Close()
	})
	return nil
}

// Start implements sink.Sink: it creates every mapped index with its primary key (or checks
// the primary key of an existing one) and applies the mapping's settings, waiting for those
// tasks. Start is idempotent.
//
// An index that cannot be used as mapped (it exists with another primary key, or Meilisearch
// refuses its settings) does not fail Start: the other tables keep flowing, and Apply
// dead-letters that index's rows with the reason and the fix (see the package documentation).
// Start fails only when Meilisearch is unreachable or refuses the credentials, so the engine
// retries it with backoff.
func (s *Sink) Start(ctx context.Context) error {
	for _, ix := range s.indexes {
		if err := s.setup(ctx, ix, true); err != nil {
			return err
		}
	}
	return nil
}

// setup (re)checks one index and records whether it is usable (force: even when it was
// checked lately). It returns only errors that say Meilisearch could not be asked.
func (s *Sink) setup(ctx context.Context, ix *index, force bool) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !force && (ix.ready || (ix.problem != nil && time.Since(ix.checkedAt) < s.opts.Recheck)) {
		return nil // another Apply checked it while this one waited for the lock
	}
	problem, err := s.bootstrap(ctx, ix)
	if err != nil {
		return err
	}
	ix.checkedAt = time.Now()
	log := s.log.WithFields(logrus.Fields{"index": ix.uid, "table": strings.Join(ix.tables, ",")})
	if problem != nil {
		if ix.problem == nil || ix.problem.Error() != problem.Error() {
			log.WithError(problem).Error("meilisearch index cannot be used; its rows are dead-lettered until it is fixed")
		}
		ix.ready, ix.problem = false, problem
		return nil
	}
	if ix.problem != nil {
		log.Info("meilisearch index is usable again")
	}
	ix.ready, ix.problem = true, nil
	return nil
}

// usable returns the reason an index's rows cannot be written now, re-checking an index whose
// problem is older than Options.Recheck (the operator may have fixed it).
func (s *Sink) usable(ctx context.Context, ix *index) error {
	ix.mu.Lock()
	ready, problem, checked := ix.ready, ix.problem, ix.checkedAt
	ix.mu.Unlock()
	if ready {
		return nil
	}
	if problem != nil && time.Since(checked) < s.opts.Recheck {
		return problem
	}
	if err := s.setup(ctx, ix, false); err != nil {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.problem
}

// indexProblem is a misconfigured index, with the fix.
type indexProblem struct{ msg string }

func (p *indexProblem) Error() string { return p.msg }

func (s *Sink) bootstrap(ctx context.Context, ix *index) (problem, err error) {
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		info, err := s.client.GetIndex(rctx, ix.uid)
		cancel()
		if err != nil && !hasCode(err, codeIndexNotFound) {
			return nil, classify("reading index "+ix.uid, err)
		}
		if err == nil {
			if problem, err := s.checkPrimaryKey(ctx, ix, info.PrimaryKey); problem != nil || err != nil {
				return problem, err
			}
			break
		}
		task, err := s.runTask(ctx, "creating index "+ix.uid, func(c context.Context) (*meili.TaskInfo, error) {
			return s.client.CreateIndex(c, &meili.IndexConfig{Uid: ix.uid, PrimaryKey: ix.primaryKey})
		})
		if err != nil {
			return nil, err
		}
		if task.Status == meili.TaskStatusSucceeded {
			s.log.WithFields(logrus.Fields{"index": ix.uid, "primary_key": ix.primaryKey}).Info("created meilisearch index")
			break
		}
		if string(task.Error.Code) == codeIndexAlreadyExists && attempt == 0 {
			continue // created meanwhile (another replica, or a document write): check it
		}
		if p, err := s.taskProblem(ix, "creating the index", task); p != nil || err != nil {
			return p, err
		}
	}
	return s.applySettings(ctx, ix)
}

// checkPrimaryKey verifies an existing index's primary key, setting it when the index has
// none yet (created by hand, no documents).
func (s *Sink) checkPrimaryKey(ctx context.Context, ix *index, have string) (problem, err error) {
	switch have {
	case ix.primaryKey:
		return nil, nil
	case "":
		task, err := s.runTask(ctx, "setting the primary key of index "+ix.uid, func(c context.Context) (*meili.TaskInfo, error) {
			return s.client.Index(ix.uid).UpdateIndex(c, &meili.UpdateIndexRequestParams{PrimaryKey: ix.primaryKey})
		})
		if err != nil {
			return nil, err
		}
		if task.Status != meili.TaskStatusSucceeded {
			return s.taskProblem(ix, "setting its primary key to "+ix.primaryKey, task)
		}
		return nil, nil
	}
	return &indexProblem{fmt.Sprintf("meilisearch index %q (tables %s) has primary key %q but the mapping says %q: "+
		"either set meilisearch.primary_key: %s for these tables, or delete the index (DELETE /indexes/%s) so appwrite-sync recreates it, "+
		"then replay the dead-lettered rows (or run a backfill)",
		ix.uid, strings.Join(ix.tables, ", "), have, ix.primaryKey, have, ix.uid)}, nil
}

// taskProblem turns a failed setup task into an index problem (or, for a server-side failure,
// a retryable error).
func (s *Sink) taskProblem(ix *index, what string, t *meili.Task) (problem, err error) {
	if t.Status == meili.TaskStatusFailed && !taskErrorIsSystem(t) {
		return &indexProblem{fmt.Sprintf("meilisearch index %q (tables %s): %s failed: %s (%s)",
			ix.uid, strings.Join(ix.tables, ", "), what, t.Error.Message, t.Error.Code)}, nil
	}
	return nil, fmt.Errorf("%w: meilisearch index %q: %s: task %d %s: %s (%s)", connector.ErrSinkUnavailable,
		ix.uid, what, t.UID, t.Status, t.Error.Message, t.Error.Code)
}

// runTask starts a setup task (the request bounded by Options.Timeout; op says what it does, in
// errors) and waits for it.
func (s *Sink) runTask(ctx context.Context, op string, start func(context.Context) (*meili.TaskInfo, error)) (*meili.Task, error) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	ti, err := start(rctx)
	cancel()
	if err != nil {
		return nil, classify(op, err)
	}
	return s.waitOne(ctx, ti.TaskUID)
}

func (s *Sink) waitOne(ctx context.Context, uid int64) (*meili.Task, error) {
	ts, err := s.poll.wait(ctx, []int64{uid})
	if err != nil {
		return nil, err
	}
	if ts[uid] == nil {
		return nil, errTaskUnknown(uid)
	}
	return ts[uid], nil
}

// errTaskUnknown is a setup task the server lost: retried, like an unavailable server.
func errTaskUnknown(uid int64) error {
	return fmt.Errorf("%w: meilisearch task %d is unknown to the server (restarted without its data?)", connector.ErrSinkUnavailable, uid)
}

// applySettings sends the mapping's settings and waits for them. "$id" is always made
// filterable (a row can be found by its Appwrite id, which the document id may encode), along
// with the attributes the mapping adds itself (the permissions field, "$table" in shared
// indexes).
func (s *Sink) applySettings(ctx context.Context, ix *index) (problem, err error) {
	want := ix.settings
	idx := s.client.Index(ix.uid) // one IndexManager per operation: they are not goroutine-safe
	var patch meili.Settings
	var sent bool
	type call struct {
		what string
		do   func(context.Context) (*meili.TaskInfo, error)
	}
	var calls []call
	// meili.Settings drops empty lists (omitempty): an explicitly empty list goes through the
	// attribute's own route instead.
	list := func(name string, v []string, set *[]string, put func(context.Context, *[]string) (*meili.TaskInfo, error)) {
		switch {
		case v == nil:
		case len(v) > 0:
			*set, sent = v, true
		default:
			empty := []string{}
			calls = append(calls, call{name, func(c context.Context) (*meili.TaskInfo, error) { return put(c, &empty) }})
		}
	}
	list("searchable attributes", want.Searchable, &patch.SearchableAttributes, idx.UpdateSearchableAttributes)
	list("sortable attributes", want.Sortable, &patch.SortableAttributes, idx.UpdateSortableAttributes)
	list("displayed attributes", want.Displayed, &patch.DisplayedAttributes, idx.UpdateDisplayedAttributes)
	list("ranking rules", want.RankingRules, &patch.RankingRules, idx.UpdateRankingRules)
	list("stop words", want.StopWords, &patch.StopWords, idx.UpdateStopWords)
	switch {
	case want.Synonyms == nil:
	case len(want.Synonyms) > 0:
		patch.Synonyms, sent = want.Synonyms, true
	default:
		empty := map[string][]string{}
		calls = append(calls, call{"synonyms", func(c context.Context) (*meili.TaskInfo, error) { return idx.UpdateSynonyms(c, &empty) }})
	}
	if want.Filterable != nil {
		patch.FilterableAttributes, sent = withID(want.Filterable), true
	} else {
		// Not set by the mapping: keep the index's own list, adding "$id" when missing.
		rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		have, err := idx.GetFilterableAttributes(rctx)
		cancel()
		if err != nil {
			return nil, classify("reading the filterable attributes of index "+ix.uid, err)
		}
		var cur []interface{}
		if have != nil {
			cur = *have
		}
		if !filterableCovers(cur, mapping.FieldID) {
			next := append(slices.Clone(cur), interface{}(mapping.FieldID))
			calls = append(calls, call{"filterable attributes", func(c context.Context) (*meili.TaskInfo, error) {
				return idx.UpdateFilterableAttributes(c, &next)
			}})
		}
	}
	if sent {
		calls = append([]call{{"settings", func(c context.Context) (*meili.TaskInfo, error) { return idx.UpdateSettings(c, &patch) }}}, calls...)
	}
	uids := make([]int64, 0, len(calls))
	whats := map[int64]string{}
	for _, c := range calls {
		rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		ti, err := c.do(rctx)
		cancel()
		if err != nil {
			if me, ok := apiError(err); ok && me.StatusCode >= 400 && me.StatusCode < 500 && me.StatusCode != 401 && me.StatusCode != 403 && me.StatusCode != 408 && me.StatusCode != 429 {
				// Refused on sight (an invalid value): the index is misconfigured.
				return &indexProblem{fmt.Sprintf("meilisearch index %q (tables %s): updating %s was refused: %s (%s)",
					ix.uid, strings.Join(ix.tables, ", "), c.what, me.APIError.Message, me.APIError.Code)}, nil
			}
			return nil, classify("updating "+c.what+" of index "+ix.uid, err)
		}
		uids = append(uids, ti.TaskUID)
		whats[ti.TaskUID] = c.what
	}
	tasks, err := s.poll.wait(ctx, uids)
	if err != nil {
		return nil, err
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	for _, uid := range uids {
		t := tasks[uid]
		if t == nil {
			return nil, errTaskUnknown(uid)
		}
		if t.Status != meili.TaskStatusSucceeded {
			return s.taskProblem(ix, "updating "+whats[uid], t)
		}
	}
	return nil, nil
}

// withID returns the filterable list with "$id" added when missing.
func withID(list []string) []string {
	if slices.Contains(list, mapping.FieldID) {
		return list
	}
	return append(slices.Clone(list), mapping.FieldID)
}

// filterableCovers reports whether a filterableAttributes setting (strings, or the granular
// {attributePatterns, features} objects) makes attr filterable with equality.
func filterableCovers(rules []interface{}, attr string) bool {
	for _, r := range rules {
		switch v := r.(type) {
		case string:
			if v == attr || v == "*" || (strings.HasSuffix(v, "*") && strings.HasPrefix(attr, strings.TrimSuffix(v, "*"))) {
				return true
			}
		case map[string]interface{}:
			pats, _ := v["attributePatterns"].([]interface{})
			for _, p := range pats {
				if ps, ok := p.(string); ok && filterableCovers([]interface{}{ps}, attr) {
					if f, _ := v["features"].(map[string]interface{}); f != nil {
						if fl, _ := f["filter"].(map[string]interface{}); fl != nil {
							if eq, ok := fl["equality"].(bool); ok && !eq {
								continue
							}
						}
					}
					return true
				}
			}
		}
	}
	return false
}
