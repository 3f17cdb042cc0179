// Package migrations embeds the state store's SQL migrations and applies them with
// golang-migrate (pgx v5 driver). golang-migrate was chosen over goose and tern because its
// pgx v5 driver takes a Postgres advisory lock around the whole run, so two replicas starting
// at once serialise instead of racing. Each migration and its version row commit in one
// transaction (atomicDriver), so a migration killed half-way leaves no "dirty" state behind:
// it rolls back whole, and the next start runs it again.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // database/sql for golang-migrate
)

//go:embed *.sql
var files embed.FS

// Table is where golang-migrate records the applied version (in the connection's schema).
const Table = "appwrite_sync_schema_migrations"

// Latest is the newest migration version embedded in this binary.
func Latest() (uint, error) {
	src, err := iofs.New(files, ".")
	if err != nil {
		return 0, err
	}
	defer src.Close()
	v, err := src.First()
	if err != nil {
		return 0, err
	}
	for {
		next, err := src.Next(v)
		if err != nil {
			return v, nil
		}
		v = next
	}
}

// ErrConnect means Up could not reach the state store (it may be starting: retry).
var ErrConnect = errors.New("connecting to state store")

// Up applies every pending migration to the database at url.
func Up(ctx context.Context, url string) (version uint, err error) {
	src, err := iofs.New(files, ".")
	if err != nil {
		return 0, err
	}
	return up(ctx, url, src)
}

// up applies the migrations of src.
func up(ctx context.Context, url string, src source.Driver) (version uint, err error) {
	// Parsed here, not by database/sql: pgx's parse error quotes the connection string, and
	// its redaction of a malformed one is best effort.
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return 0, errors.New("parsing the state store URL: invalid connection string")
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	pg, err := migratepgx.WithInstance(db, &migratepgx.Config{MigrationsTable: Table})
	if err != nil {
		return 0, fmt.Errorf("preparing migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", &atomicDriver{Driver: pg, db: db})
	if err != nil {
		return 0, fmt.Errorf("preparing migrations: %w", err)
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return 0, fmt.Errorf("applying migrations: %w", err)
	}
	v, dirty, err := m.Version()
	if err != nil {
		return 0, err
	}
	if dirty {
		return v, fmt.Errorf("migration %d is dirty: fix the state store by hand, then run `appwrite-sync migrate`", v)
	}
	return v, nil
}

// atomicDriver applies each migration and records its version in one transaction.
//
// golang-migrate records "version N, dirty" in a transaction of its own, runs migration N,
// then records "version N, clean". A process killed between the first and the last (a deploy's
// SIGKILL, an OOM kill during the first start after an upgrade) left the state store dirty,
// and every later start refused to run until someone repaired it by hand: meanwhile every
// webhook was refused, and Appwrite never retries. Here the "dirty" mark is not written; the
// migration's statements and the clean version row commit together, so a killed migration
// rolls back whole and the next start simply runs it again. (Every migration here runs in a
// transaction: none uses CREATE INDEX CONCURRENTLY or anything else that cannot.)
type atomicDriver struct {
	database.Driver
	db      *sql.DB
	pending int  // the version golang-migrate is about to run
	applied bool // pending's statements and version committed
}

// SetVersion defers "N, dirty" to Run, and skips "N, clean" once Run wrote it.
func (d *atomicDriver) SetVersion(version int, dirty bool) error {
	if dirty && version >= 0 {
		d.pending, d.applied = version, false
		return nil
	}
	if !dirty && d.applied && version == d.pending {
		return nil
	}
	return d.Driver.SetVersion(version, dirty)
}

// Run executes the migration and records d.pending as applied, in one transaction. The
// advisory lock golang-migrate holds (on another connection of db) still keeps other
// replicas out.
func (d *atomicDriver) Run(migration io.Reader) error {
	body, err := io.ReadAll(migration)
	if err != nil {
		return err
	}
	ctx := context.Background()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %d: starting its transaction: %w", d.pending, err)
	}
	defer func() { _ = tx.Rollback() }()
	if strings.TrimSpace(string(body)) != "" {
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %d failed (rolled back; the state store stays at the version before it): %w", d.pending, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "TRUNCATE "+Table); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+Table+" (version, dirty) VALUES ($1, false)", d.pending); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %d: committing: %w", d.pending, err)
	}
	d.applied = true
	return nil
}

// StatusQuery reads the applied version and dirty flag; /readyz compares it with Latest.
const StatusQuery = "SELECT version, dirty FROM " + Table + " LIMIT 1"
