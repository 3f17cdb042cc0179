package pgerr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("doing it: %w", &pgconn.PgError{Code: code, ConstraintName: "c1"})
	}
	cases := []struct {
		code                            string
		data, unauthorized, unavailable bool
	}{
		{"22021", true, false, false},  // invalid byte sequence (not UTF-8)
		{"22P05", true, false, false},  // untranslatable character (a NUL)
		{"23505", true, false, false},  // unique violation
		{"23514", true, false, false},  // check violation
		{"54000", true, false, false},  // index row size exceeds maximum
		{"28P01", false, true, false},  // password authentication failed
		{"42501", false, true, false},  // insufficient privilege
		{"08006", false, false, true},  // connection failure
		{"57P01", false, false, true},  // admin shutdown
		{"57P03", false, false, true},  // cannot connect now (starting up)
		{"53300", false, false, true},  // too many connections
		{"57014", false, false, false}, // query canceled: none of these
		{"40P01", false, false, false}, // deadlock
		{"42P01", false, false, false}, // undefined table
	}
	for _, c := range cases {
		err := pg(c.code)
		require.Equal(t, c.code, Code(err))
		require.Equal(t, c.data, IsData(err), "IsData(%s)", c.code)
		require.Equal(t, c.unauthorized, IsUnauthorized(err), "IsUnauthorized(%s)", c.code)
		require.Equal(t, c.unavailable, IsUnavailable(err), "IsUnavailable(%s)", c.code)
	}
	require.True(t, IsUndefinedTable(pg("42P01")))
	require.True(t, IsUniqueViolation(pg("23505"), "c1"))
	require.True(t, IsUniqueViolation(pg("23505"), ""))
	require.False(t, IsUniqueViolation(pg("23505"), "other"))
	require.False(t, IsUniqueViolation(pg("23514"), "c1"))

	plain := errors.New("22021 in the message is not a code")
	require.Empty(t, Code(plain))
	require.False(t, IsData(plain) || IsUnauthorized(plain) || IsUnavailable(plain) || IsUndefinedTable(plain))
	require.Empty(t, Code(nil))
}
