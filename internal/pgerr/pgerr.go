// Package pgerr classifies Postgres errors by SQLSTATE (pgconn.PgError's Code, named by
// jackc/pgerrcode), never by message text: the recorder, the delivery queue, the warehouse sink
// and the backfill store ask the same questions of the same codes, so they share one answer.
package pgerr

import (
	"errors"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
)

// Code is err's SQLSTATE, or "" when err is not (and does not wrap) a *pgconn.PgError.
func Code(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// IsData reports whether Postgres refused a statement for the data it was given, not for
// its own state: a value it cannot store (class 22, data exception: invalid UTF-8, a NUL byte,
// a number out of range), a constraint the data breaks (class 23), or a value over a limit
// (class 54, e.g. an index entry too large). Retrying the same data fails the same way.
func IsData(err error) bool {
	c := Code(err)
	return c != "" && (pgerrcode.IsDataException(c) || pgerrcode.IsIntegrityConstraintViolation(c) ||
		pgerrcode.IsProgramLimitExceeded(c))
}

// IsUnauthorized reports whether the server refused the credentials (class 28) or the role
// lacks a privilege (42501): waiting does not help; an operator must.
func IsUnauthorized(err error) bool {
	c := Code(err)
	return c != "" && (pgerrcode.IsInvalidAuthorizationSpecification(c) || c == pgerrcode.InsufficientPrivilege)
}

// IsUnavailable reports whether the server is going away or cannot take the connection now:
// a connection exception (class 08), a shutdown or start-up in progress, a dropped database or
// an idle-session timeout (57P01–57P05), or too many connections (53300). Retry later.
// (57014, a cancelled statement, is not one of them.)
func IsUnavailable(err error) bool {
	c := Code(err)
	switch c {
	case "":
		return false
	case pgerrcode.AdminShutdown, pgerrcode.CrashShutdown, pgerrcode.CannotConnectNow, pgerrcode.DatabaseDropped,
		pgerrcode.IdleSessionTimeout, pgerrcode.TooManyConnections:
		return true
	}
	return pgerrcode.IsConnectionException(c)
}

// IsUndefinedTable reports 42P01: the table (for the state store: the migrations) is missing.
func IsUndefinedTable(err error) bool { return Code(err) == pgerrcode.UndefinedTable }

// IsUniqueViolation reports 23505 on the named constraint ("" matches any).
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgerrcode.UniqueViolation &&
		(constraint == "" || pgErr.ConstraintName == constraint)
}
