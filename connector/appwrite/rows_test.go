package appwrite_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
)

func TestRowSequence(t *testing.T) {
	t.Parallel()
	cases := []struct {
		row  string
		want string
		err  string
	}{
		{row: `{"$sequence":1234}`, want: "1234"},   // 1.8
		{row: `{"$sequence":"1234"}`, want: "1234"}, // 1.9+
		{row: `{"$sequence":"0195f7a2-7c3b-7d6e-8f00-1a2b3c4d5e6f"}`, // MongoDB: UUIDv7
			want: "0195f7a2-7c3b-7d6e-8f00-1a2b3c4d5e6f"},
		{row: `{"$sequence": 98765432109876543 }`, want: "98765432109876543"}, // beyond float64 precision, kept verbatim
		{row: `{"$id":"x"}`, err: "no $sequence"},
		{row: `{"$sequence":null}`, err: "no $sequence"},
		{row: `{"$sequence":""}`, err: "empty $sequence"},
		{row: `{"$sequence":{"a":1}}`, err: "neither a number nor a string"},
		{row: `[1]`, err: "not a JSON object"},
	}
	for _, tc := range cases {
		got, err := appwrite.RowSequence(json.RawMessage(tc.row))
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.row)
			continue
		}
		require.NoError(t, err, tc.row)
		assert.Equal(t, tc.want, got, tc.row)
	}
}

func TestRowMeta(t *testing.T) {
	t.Parallel()
	id, u, seq, err := appwrite.RowMeta(json.RawMessage(
		`{"$id":"r1","$sequence":"7","$updatedAt":"2026-03-26T12:00:00.123+02:00","title":"x"}`))
	require.NoError(t, err)
	assert.Equal(t, "r1", id)
	assert.Equal(t, "7", seq)
	assert.True(t, u.Equal(time.Date(2026, 3, 26, 10, 0, 0, 123e6, time.UTC)), u)

	for row, want := range map[string]string{
		`{"$sequence":1,"$updatedAt":"2026-03-26T10:00:00.000+00:00"}`:          "no $id",
		`{"$id":"r","$sequence":1}`:                                             "no $updatedAt",
		`{"$id":"r","$sequence":1,"$updatedAt":"yesterday"}`:                    "datetime",
		`{"$id":"r","$updatedAt":"2026-03-26T10:00:00.000+00:00"}`:              "no $sequence",
		`{"$id":"r","$sequence":true,"$updatedAt":"2026-03-26T10:00:00+00:00"}`: "neither",
	} {
		_, _, _, err := appwrite.RowMeta(json.RawMessage(row))
		assert.ErrorContains(t, err, want, row)
	}
}

func TestFormatTime(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 3, 26, 12, 0, 0, 123456789, time.FixedZone("x", 2*3600))
	assert.Equal(t, "2026-03-26T10:00:00.123+00:00", appwrite.FormatTime(ts))
	back, err := appwrite.ParseTime("2026-03-26T10:00:00.123+00:00")
	require.NoError(t, err)
	assert.True(t, back.Equal(ts.Truncate(time.Millisecond)))
}
