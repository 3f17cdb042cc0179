package backfill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/internal/pgerr"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtext"
)

// store is the jobs' SQL. Every write of a running job is conditioned on the caller still
// holding its lease (lease_owner and state running), so a process whose lease lapsed, or
// whose job was cancelled, changes nothing.
type store struct {
	pool *pgxpool.Pool
}

// ActiveError is returned when the table already has a queued or running job.
type ActiveError struct {
	Table string
	ID    string
	Mode  Mode
	State State
}

func (e *ActiveError) Error() string {
	return fmt.Sprintf("table %s already has a %s job %s (%s): follow it with GET /admin/backfill/%s or cancel it with DELETE /admin/backfill/%s",
		e.Table, e.Mode, e.ID, e.State, e.ID, e.ID)
}

const jobColumns = `id, table_key, mode, state, trigger, phase, rows_read, rows_changed, rows_deleted, total,
    COALESCE(error, ''), COALESCE(checkpoint, ''), since, failures, COALESCE(lease_owner, ''),
    created_at, started_at, finished_at, updated_at, scan_started_at, max_updated_at,
    CASE WHEN run_started_at IS NULL OR state = 'queued' THEN 0
         ELSE (rows_read - run_rows_base) / GREATEST(EXTRACT(EPOCH FROM COALESCE(finished_at, now()) - run_started_at), 0.001)
    END::float8, allow_mass_delete`

func scanJob(row pgx.Row) (*Job, error) {
	j := &Job{}
	var mode, state string
	err := row.Scan(&j.ID, &j.Table, &mode, &state, &j.Trigger, &j.Phase, &j.RowsRead, &j.RowsChanged, &j.RowsDeleted, &j.Total,
		&j.Error, &j.Checkpoint, &j.Since, &j.Failures, &j.Owner,
		&j.CreatedAt, &j.StartedAt, &j.FinishedAt, &j.UpdatedAt, &j.scanStartedAt, &j.maxUpdatedAt, &j.RatePerS, &j.AllowMassDelete)
	if err != nil {
		return nil, err
	}
	j.Mode, j.State = Mode(mode), State(state)
	j.setRowsTotal(j.Total)
	if j.State == StateRunning && j.RowsTotal != nil && j.RatePerS > 0 {
		eta := float64(max(0, *j.RowsTotal-j.RowsRead)) / j.RatePerS
		j.ETAs = &eta
	}
	return j, nil
}

func newJobID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "bf-" + hex.EncodeToString(b)
}

// insert queues a job. The watermark is read in the same statement: no other job of the
// table can run between it and the job's start (one job per table), so it cannot move.
// dueWithin > 0 makes the insert conditional: nothing is queued (and "" returned) when a job
// of a mode in dueModes was created within that time. A table with an active job yields
// *ActiveError. from, when not nil, makes an incremental job start at from minus the skew when
// that is earlier than the watermark minus the skew (see Manager.EnqueueSince).
func (s *store) insert(ctx context.Context, table string, mode Mode, trigger string, skew, dueWithin time.Duration, dueModes []string, allowMassDelete bool, from *time.Time) (string, error) {
	id := newJobID()
	tag, err := s.pool.Exec(ctx, `INSERT INTO appwrite_sync.backfill_jobs (id, table_key, mode, state, trigger, allow_mass_delete, since)
        SELECT $1, $2, $3, 'queued', $4, $8,
               CASE WHEN $3 = 'incremental' THEN (SELECT LEAST(updated_at, COALESCE($9, updated_at)) - $5::interval
                                                  FROM appwrite_sync.backfill_watermarks WHERE table_key = $2) END
        WHERE $6::interval <= '0s' OR NOT EXISTS (
            SELECT 1 FROM appwrite_sync.backfill_jobs
            WHERE table_key = $2 AND mode = ANY($7::text[]) AND created_at > now() - $6::interval)`,
		id, table, string(mode), trigger, skew, dueWithin, dueModes, allowMassDelete, from)
	if pgerr.IsUniqueViolation(err, "backfill_jobs_one_active") {
		return "", s.activeError(ctx, table)
	}
	if err != nil {
		return "", err
	}
	if tag.RowsAffected() == 0 {
		return "", nil
	}
	return id, nil
}

func (s *store) activeError(ctx context.Context, table string) error {
	e := &ActiveError{Table: table}
	var mode, state string
	err := s.pool.QueryRow(ctx, `SELECT id, mode, state FROM appwrite_sync.backfill_jobs
        WHERE table_key = $1 AND state IN ('queued', 'running')`, table).Scan(&e.ID, &mode, &state)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	e.Mode, e.State = Mode(mode), State(state)
	return e
}

// claim takes the oldest claimable job: queued and due, or running with a lapsed lease (its
// process died). Returns nil when there is none.
func (s *store) claim(ctx context.Context, owner string, lease time.Duration) (*Job, error) {
	row := s.pool.QueryRow(ctx, `UPDATE appwrite_sync.backfill_jobs j
        SET state = 'running', lease_owner = $1, available_at = now() + $2::interval, updated_at = now(),
            started_at = COALESCE(started_at, now()), scan_started_at = COALESCE(scan_started_at, now()),
            run_started_at = now(), run_rows_base = rows_read
        WHERE j.id = (SELECT id FROM appwrite_sync.backfill_jobs
                      WHERE state IN ('queued', 'running') AND available_at <= now()
                      ORDER BY available_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING `+jobColumns, owner, lease)
	j, err := scanJob(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return j, err
}

// renew extends the lease. ok is false when the job is no longer this owner's running job;
// state then says what it became.
func (s *store) renew(ctx context.Context, id, owner string, lease time.Duration) (ok bool, state State, err error) {
	tag, err := s.pool.Exec(ctx, `UPDATE appwrite_sync.backfill_jobs SET available_at = now() + $3::interval, updated_at = now()
        WHERE id = $1 AND lease_owner = $2 AND state = 'running'`, id, owner, lease)
	if err != nil {
		return false, "", err
	}
	if tag.RowsAffected() == 1 {
		return true, StateRunning, nil
	}
	var st string
	if err := s.pool.QueryRow(ctx, `SELECT state FROM appwrite_sync.backfill_jobs WHERE id = $1`, id).Scan(&st); err != nil {
		return false, "", err
	}
	return false, State(st), nil
}

// progress is one page's effect on a job.
type progress struct {
	checkpoint   string // "" keeps it
	read         int
	changed      int
	deleted      int
	maxUpdatedAt time.Time // zero: none
	total        int64     // < 0: unknown
	seen         []string  // full scans: the page's row ids
	phase        string    // "" keeps it
}

// advance records a page: the ids seen, the checkpoint and the counters, and renews the
// lease. ok is false when the caller no longer holds the job.
func (s *store) advance(ctx context.Context, id, owner string, lease time.Duration, p progress) (bool, error) {
	var maxUA *time.Time
	if !p.maxUpdatedAt.IsZero() {
		maxUA = &p.maxUpdatedAt
	}
	var total *int64
	if p.total >= 0 {
		total = &p.total
	}
	ok := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE appwrite_sync.backfill_jobs SET
                checkpoint = COALESCE(NULLIF($3, ''), checkpoint), phase = COALESCE(NULLIF($9, ''), phase),
                rows_read = rows_read + $4, rows_changed = rows_changed + $5, rows_deleted = rows_deleted + $6,
                max_updated_at = GREATEST(max_updated_at, $7), total = COALESCE($8, total),
                available_at = now() + $10::interval, updated_at = now()
            WHERE id = $1 AND lease_owner = $2 AND state = 'running'`,
			id, owner, p.checkpoint, p.read, p.changed, p.deleted, maxUA, total, p.phase, lease)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		ok = true
		if len(p.seen) > 0 {
			// rows_seen counts what the unlogged backfill_seen should hold (see seenLost).
			_, err = tx.Exec(ctx, `WITH ins AS (INSERT INTO appwrite_sync.backfill_seen (job_id, row_id)
                    SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING 1)
                UPDATE appwrite_sync.backfill_jobs SET rows_seen = rows_seen + (SELECT count(*) FROM ins) WHERE id = $1`, id, p.seen)
		}
		return err
	})
	return ok, err
}

// seenLost reports whether backfill_seen holds fewer of the job's ids than it stored: the
// table is unlogged, and a crash of the state store (or a failover to a standby) empties it.
// The deletes would then take rows the scan saw for gone.
func (s *store) seenLost(ctx context.Context, id string) (bool, error) {
	var lost bool
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM appwrite_sync.backfill_seen WHERE job_id = $1) <
            (SELECT rows_seen FROM appwrite_sync.backfill_jobs WHERE id = $1)`, id).Scan(&lost)
	return lost, err
}

// rescan sends a job whose seen ids were lost back to the start of its scan. It keeps
// scan_started_at: the rows the scan advanced so far stay out of the deletes. ok is false when
// the caller no longer holds the job.
func (s *store) rescan(ctx context.Context, id, owner string) (bool, error) {
	ok := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE appwrite_sync.backfill_jobs SET checkpoint = NULL, phase = 'scan', rows_seen = 0, updated_at = now()
            WHERE id = $1 AND lease_owner = $2 AND state = 'running'`, id, owner)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		ok = true
		_, err = tx.Exec(ctx, `DELETE FROM appwrite_sync.backfill_seen WHERE job_id = $1`, id)
		return err
	})
	return ok, err
}

// deleteCandidate is a live ledger row a full scan did not see.
type deleteCandidate struct {
	rowID     string
	updatedAt time.Time
	sequence  *string
	row       string
}

// Live ledger rows of the job's table ($1) are unseen when they were recorded before the scan
// began ($2) and the scan did not see them ($3: the job). (A row the scan itself advanced was
// recorded after the scan began; only the rows it saw but did not advance are in
// backfill_seen.) unseenCount counts exactly what unseen pages through.
const (
	liveRows   = `l.table_key = $1 AND l.op = 1`
	unseenRows = `l.recorded_at < $2
          AND NOT EXISTS (SELECT 1 FROM appwrite_sync.backfill_seen s WHERE s.job_id = $3 AND s.row_id = l.row_id)`
)

// unseenCount returns how many rows unseen would yield in all, how many live rows the ledger
// holds for the job's table, and how many rows the job's scan read.
func (s *store) unseenCount(ctx context.Context, j *Job) (unseen, live, read int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE `+unseenRows+`),
            count(*), (SELECT rows_read FROM appwrite_sync.backfill_jobs WHERE id = $3)
        FROM appwrite_sync.ledger l WHERE `+liveRows, j.Table, j.scanStartedAt, j.ID).Scan(&unseen, &live, &read)
	return unseen, live, read, err
}

// unseen returns up to limit unseen rows after row id `after`, in id order.
func (s *store) unseen(ctx context.Context, j *Job, after string, limit int) ([]deleteCandidate, error) {
	rows, err := s.pool.Query(ctx, `SELECT l.row_id, l.updated_at, l.sequence, `+ledger.SourceSQL+`
        FROM appwrite_sync.ledger l
        WHERE `+liveRows+` AND `+unseenRows+` AND l.row_id > $4
        ORDER BY l.row_id LIMIT $5`, j.Table, j.scanStartedAt, j.ID, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (deleteCandidate, error) {
		var c deleteCandidate
		err := r.Scan(&c.rowID, &c.updatedAt, &c.sequence, &c.row)
		return c, err
	})
}

// succeed ends the job, advances the table's watermark to the greatest $updatedAt recorded
// but not past the start of the scan (rows updated during the scan may have been behind the
// keyset), and forgets the ids seen.
func (s *store) succeed(ctx context.Context, id, owner string) (bool, error) {
	ok := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var table string
		var wm *time.Time
		err := tx.QueryRow(ctx, `UPDATE appwrite_sync.backfill_jobs
            SET state = 'succeeded', phase = 'done', finished_at = now(), updated_at = now(), lease_owner = NULL, error = NULL
            WHERE id = $1 AND lease_owner = $2 AND state = 'running'
            RETURNING table_key, LEAST(max_updated_at, scan_started_at)`, id, owner).Scan(&table, &wm)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		if wm != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO appwrite_sync.backfill_watermarks AS w (table_key, updated_at, job_id) VALUES ($1, $2, $3)
                ON CONFLICT (table_key) DO UPDATE SET updated_at = GREATEST(w.updated_at, excluded.updated_at),
                    job_id = CASE WHEN excluded.updated_at > w.updated_at THEN excluded.job_id ELSE w.job_id END, set_at = now()`,
				table, *wm, id); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM appwrite_sync.backfill_seen WHERE job_id = $1`, id)
		return err
	})
	return ok, err
}

// maxErrorText bounds a job's stored error text, in bytes.
const maxErrorText = 4000

// fail records a failed attempt: the job is queued again after retryIn, or, when final,
// failed. Returns the resulting state ("" when the caller no longer held the job).
func (s *store) fail(ctx context.Context, id, owner, reason string, final bool, retryIn time.Duration) (State, error) {
	var st string
	err := s.pool.QueryRow(ctx, `UPDATE appwrite_sync.backfill_jobs
        SET failures = failures + 1, error = $3, lease_owner = NULL, updated_at = now(),
            state = CASE WHEN $4 THEN 'failed' ELSE 'queued' END,
            finished_at = CASE WHEN $4 THEN now() END,
            available_at = now() + $5::interval
        WHERE id = $1 AND lease_owner = $2 AND state = 'running'
        RETURNING state`, id, owner, pgtext.Clean(reason, maxErrorText), final, retryIn).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err == nil && final {
		_, err = s.pool.Exec(ctx, `DELETE FROM appwrite_sync.backfill_seen WHERE job_id = $1`, id)
	}
	return State(st), err
}

// release hands a running job back (this process is stopping): it is claimable at once and
// resumes from its checkpoint.
func (s *store) release(ctx context.Context, id, owner string) error {
	_, err := s.pool.Exec(ctx, `UPDATE appwrite_sync.backfill_jobs
        SET state = 'queued', lease_owner = NULL, available_at = now(), updated_at = now()
        WHERE id = $1 AND lease_owner = $2 AND state = 'running'`, id, owner)
	return err
}

// cancel ends an active job. Its owner notices at its next heartbeat or page.
func (s *store) cancel(ctx context.Context, id string) (mode Mode, ok bool, err error) {
	var m string
	err = s.pool.QueryRow(ctx, `UPDATE appwrite_sync.backfill_jobs
        SET state = 'canceled', finished_at = now(), updated_at = now(), lease_owner = NULL,
            error = 'canceled by request'
        WHERE id = $1 AND state IN ('queued', 'running') RETURNING mode`, id).Scan(&m)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	_, err = s.pool.Exec(ctx, `DELETE FROM appwrite_sync.backfill_seen WHERE job_id = $1`, id)
	return Mode(m), true, err
}

func (s *store) get(ctx context.Context, id string) (*Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM appwrite_sync.backfill_jobs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return j, err
}

func (s *store) list(ctx context.Context, limit int) ([]*Job, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM appwrite_sync.backfill_jobs ORDER BY created_at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// sweep forgets the seen ids of ended jobs (a cancel racing the owner's last page can leave
// some) and removes ended jobs older than retention.
func (s *store) sweep(ctx context.Context, retention time.Duration) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM appwrite_sync.backfill_seen s USING appwrite_sync.backfill_jobs j
        WHERE s.job_id = j.id AND j.state NOT IN ('queued', 'running')`); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM appwrite_sync.backfill_jobs
        WHERE state NOT IN ('queued', 'running') AND finished_at < now() - $1::interval`, retention)
	return err
}
