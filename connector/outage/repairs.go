package outage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
)

// refusedFile keeps the repair list across restarts, next to the spool.
const refusedFile = "refused.json"

// refusal is a table's entry on the repair list.
type refusal struct {
	// At is the arrival of the first change refused (or when the webhook was disabled).
	At time.Time `json:"at"`
	// Trigger is the reconcile job's: backfill.TriggerRepair, or TriggerProbe for a webhook
	// that was disabled.
	Trigger string `json:"trigger"`
}

// repairList is the tables to reconcile, each from when, kept in refusedFile when it has one.
type repairList struct {
	log     *logrus.Entry
	metrics *metrics.Metrics

	mu   sync.Mutex
	list map[string]refusal // table -> from when to reconcile it
	file string             // "" when the list is kept in memory only
}

// mark puts key on the list from `at` (or earlier, when it is there already).
func (r *repairList) mark(key connector.TableKey, at time.Time, trigger, msg, reason string) {
	table := key.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if first, ok := r.list[table]; ok && !at.Before(first.At) {
		return
	}
	r.list[table] = refusal{At: at, Trigger: trigger}
	r.metrics.RefusedTables.Set(float64(len(r.list)))
	r.log.WithFields(logrus.Fields{"table": table, "reason": reason, "from": at}).Warn(msg)
	if err := r.saveLocked(); err != nil {
		r.log.WithError(err).Warn("writing the refused tables to the spool directory failed; they are kept in memory only")
	}
}

// done takes table off the list, unless it was marked again (earlier) since was read.
func (r *repairList) done(table string, was refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.list[table] == was {
		delete(r.list, table)
	}
	r.metrics.RefusedTables.Set(float64(len(r.list)))
	if err := r.saveLocked(); err != nil {
		r.log.WithError(err).Warn("writing the refused tables failed")
	}
}

// snapshot is a copy of the list.
func (r *repairList) snapshot() map[string]refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]refusal, len(r.list))
	for k, v := range r.list {
		out[k] = v
	}
	return out
}

// load keeps the list in file from now on, and reads what an earlier run could not repair.
func (r *repairList) load(file string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.file = file
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var m map[string]refusal
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for k, v := range m {
		r.list[k] = v
	}
	r.metrics.RefusedTables.Set(float64(len(r.list)))
	return nil
}

// saveLocked writes the list (a new file, synced, renamed over the old one). It runs once per
// table and outage, never per request of a table already refused.
func (r *repairList) saveLocked() error {
	if r.file == "" {
		return nil
	}
	if len(r.list) == 0 {
		err := os.Remove(r.file)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	b, err := json.Marshal(r.list)
	if err != nil {
		return err
	}
	tmp := r.file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, r.file); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(r.file)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
