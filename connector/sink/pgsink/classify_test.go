package pgsink

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// classify decides by type, never by message text: a closed connection is the warehouse
// going away, however it is worded; an error that only mentions the words is not.
func TestClassifyByTypeNotText(t *testing.T) {
	t.Parallel()
	unavailable := []error{
		fmt.Errorf("sending batch: %w", pgconn.ErrConnClosed),
		&pgconn.ConnectError{},
		fmt.Errorf("upserting: %w", &pgconn.PgError{Code: "57P01"}), // admin shutdown
		fmt.Errorf("upserting: %w", context.DeadlineExceeded),
	}
	for _, err := range unavailable {
		require.ErrorIs(t, classify(err), connector.ErrSinkUnavailable, "%v", err)
	}
	require.ErrorIs(t, classify(&pgconn.PgError{Code: "28P01"}), connector.ErrUnauthorized)
	for _, err := range []error{
		errors.New(`encoding column "note": value "failed to connect" is not a date`),
		errors.New(`projecting row r1: the text "conn closed" is not a number`),
		fmt.Errorf("upserting: %w", &pgconn.PgError{Code: "22P02", Message: "conn closed"}),
	} {
		got := classify(err)
		require.NotErrorIs(t, got, connector.ErrSinkUnavailable, "%v", err)
		require.Same(t, err, got, "a row's own error passes unchanged")
	}
}
