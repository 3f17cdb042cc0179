package mapping

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

var typeOIDs = map[string]uint32{
	"text": pgtype.TextOID, "bigint": pgtype.Int8OID, "integer": pgtype.Int4OID,
	"double precision": pgtype.Float8OID, "numeric": pgtype.NumericOID, "boolean": pgtype.BoolOID,
	"timestamptz": pgtype.TimestamptzOID, "date": pgtype.DateOID, "jsonb": pgtype.JSONBOID,
	"text[]": pgtype.TextArrayOID, "bigint[]": pgtype.Int8ArrayOID,
}

// Every value PostgresValues returns must be encodable by pgx into its declared type. pgx
// sends a Go string in text format (extended protocol), which is how numeric values travel;
// binary format (CopyFrom) has no plan for string → numeric, so numeric is text-only.
func TestValuesEncodeWithPgx(t *testing.T) {
	m := loadGoldenMapping(t, filepath.Join("testdata", "types_ok"))
	raw, err := os.ReadFile(filepath.Join("testdata", "types_ok", "row.json"))
	require.NoError(t, err)
	r, err := DecodeRow(raw)
	require.NoError(t, err)
	tbl := m.Tables[0]
	vals, err := tbl.PostgresValues(r)
	require.NoError(t, err)
	tm := pgtype.NewMap()
	seen := map[string]bool{}
	for i, c := range tbl.PG.Columns {
		seen[c.Type] = true
		oid := typeOIDs[c.Type]
		require.NotZero(t, oid, c.Type)
		_, err := tm.Encode(oid, pgtype.TextFormatCode, vals[i], nil)
		require.NoError(t, err, "column %s (%s) text format", c.Name, c.Type)
		if c.Type != "numeric" {
			_, err = tm.Encode(oid, pgtype.BinaryFormatCode, vals[i], nil)
			require.NoError(t, err, "column %s (%s) binary format", c.Name, c.Type)
		}
	}
	require.Len(t, seen, len(typeOIDs), "types_ok covers every type")
}
