package backfill

import (
	"time"
)

// Mode is what a job reads.
type Mode string

const (
	// ModeFull scans every row and turns rows gone from the source into deletes.
	ModeFull Mode = "full"
	// ModeIncremental scans rows changed since the table's watermark (minus the skew window).
	ModeIncremental Mode = "incremental"
)

// State is where a job is in its life. queued and running are active; the others are final.
type State string

const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateCanceled  State = "canceled"
)

// Done reports whether the state is final.
func (s State) Done() bool { return s == StateSucceeded || s == StateFailed || s == StateCanceled }

// Trigger says who started a job.
const (
	TriggerAdmin    = "admin"    // POST /admin/backfill
	TriggerSchedule = "schedule" // reconcile.incremental_every / full_every
	TriggerProbe    = "probe"    // a disabled webhook was enabled again
	// TriggerRepair: changes were refused while the state store was down, or Appwrite dropped
	// events while a webhook was disabled (Manager.EnqueueSince).
	TriggerRepair = "repair"
)

// Phases of a job.
const (
	phaseScan    = "scan"
	phaseDeletes = "deletes" // full: recording deletes for rows the scan did not see
	phaseDone    = "done"
)

// Job is a job as GET /admin/backfill/{id} shows it.
type Job struct {
	ID      string `json:"id"`
	Table   string `json:"table"`
	Mode    Mode   `json:"mode"`
	State   State  `json:"state"`
	Trigger string `json:"trigger"`
	// Phase is scan, then (full) deletes, then done.
	Phase string `json:"phase"`
	// RowsRead counts rows read from Appwrite, RowsChanged those that advanced the ledger
	// (newer than what it held), RowsDeleted the deletes recorded for rows gone from the
	// source.
	RowsRead    int64 `json:"rows_read"`
	RowsChanged int64 `json:"rows_changed"`
	RowsDeleted int64 `json:"rows_deleted"`
	// RatePerS is rows read per second in the current (or last) run.
	RatePerS float64 `json:"rate_per_s"`
	// ETAs is the estimated seconds left; null unless RowsTotal is known.
	ETAs *float64 `json:"eta_s"`
	// Total is the number of rows to read, when Appwrite counted them exactly (it stops
	// counting at 5000); null otherwise.
	Total *int64 `json:"total"`
	// RowsTotal is the number of rows to read: Total when exact, otherwise an estimate from
	// the table's $sequence range (RowsTotalExact false); null when unknown.
	RowsTotal      *int64 `json:"rows_total"`
	RowsTotalExact bool   `json:"rows_total_exact"`
	// Error is the reason of a failure, or of the last failed attempt while retrying.
	Error string `json:"error"`
	// Checkpoint is the $sequence of the last row recorded: a resumed job reads after it.
	Checkpoint string `json:"checkpoint,omitempty"`
	// Since is the lower bound on $updatedAt of an incremental job (absent: every row).
	Since *time.Time `json:"since,omitempty"`
	// AllowMassDelete lets a full job record deletes for more than half of the table's rows
	// (see massDeleteError).
	AllowMassDelete bool `json:"allow_mass_delete,omitempty"`
	// Failures counts failed attempts.
	Failures   int        `json:"failures"`
	Owner      string     `json:"owner,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`

	// Kept for the run, not shown.
	scanStartedAt *time.Time
	maxUpdatedAt  *time.Time
}
