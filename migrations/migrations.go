// Package migrations embeds the state store's SQL migrations and applies them with
// golang-migrate (pgx v5 driver). golang-migrate was chosen over goose and tern because its
// pgx v5 driver takes a Postgres advisory lock around the whole run, so two replicas starting
// at once serialise instead of racing, and it records a "dirty" flag that makes a half-applied
// migration loud instead of silently retried.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
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
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{MigrationsTable: Table})
	if err != nil {
		return 0, fmt.Errorf("preparing migrations: %w", err)
	}
	src, err := iofs.New(files, ".")
	if err != nil {
		return 0, err
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
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

// StatusQuery reads the applied version and dirty flag; /readyz compares it with Latest.
const StatusQuery = "SELECT version, dirty FROM " + Table + " LIMIT 1"
