package ledger

import (
	"encoding/binary"
	"time"
)

// The record statement's parameters in Postgres's binary array format (array_send), written
// by hand.
//
// Through pgx's generic path, a [][]byte argument for a json[] parameter is encoded element by
// element into a buffer that grows by doubling, and the finished array is then copied into the
// Bind message: for a group of 1 KiB rows that was a fifth of every byte the service allocated
// under load, and the reflection-driven encoding about 4% of its CPU. Here each array is
// written once into a buffer sized up front. TestRecordParamsMatchPgx holds every encoder to
// pgx's own binary encoding of the same values.

// Element type OIDs.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt2        = 21
	oidText        = 25
	oidTimestamptz = 1184
)

// microsecY2K is the Unix time of 2000-01-01 in microseconds: timestamptz counts from there.
const microsecY2K = 946_684_800 * 1_000_000

// arrayHeaderLen is the size of a one-dimensional array's header.
const arrayHeaderLen = 20

// params holds a statement's binary parameters, written one after another into one buffer
// sized up front: append a parameter to buf, and hand the result to add.
type params struct {
	buf []byte
	out [][]byte
}

func newParams(size, n int) *params {
	return &params{buf: make([]byte, 0, size), out: make([][]byte, 0, n)}
}

// add takes b, buf with one more parameter appended, and slices that parameter off.
func (p *params) add(b []byte) {
	p.out = append(p.out, b[len(p.buf):len(b):len(b)])
	p.buf = b
}

// addVersions adds the five arrays that name versions, the first parameters of the record and
// history statements: table keys, row ids, $updatedAt, ops and content hashes.
func (p *params) addVersions(tk, ids []string, uas []time.Time, ops []int16, hashes [][]byte) {
	p.add(appendTextArray(p.buf, oidText, tk))
	p.add(appendTextArray(p.buf, oidText, ids))
	p.add(appendTimestamptzArray(p.buf, uas))
	p.add(appendInt2Array(p.buf, ops))
	p.add(appendBytesArray(p.buf, oidBytea, hashes))
}

// appendArrayHeader: one dimension (also when empty, as pgx sends it), n elements from 1.
func appendArrayHeader(buf []byte, elem uint32, n int, hasNull bool) []byte {
	be := binary.BigEndian
	flags := uint32(0)
	if hasNull {
		flags = 1
	}
	buf = be.AppendUint32(be.AppendUint32(be.AppendUint32(buf, 1), flags), elem)
	return be.AppendUint32(be.AppendUint32(buf, uint32(n)), 1) // length, lower bound 1
}

// appendTextArray appends vs as an array of elem (text or json: their binary form is the
// text).
func appendTextArray(buf []byte, elem uint32, vs []string) []byte {
	buf = appendArrayHeader(buf, elem, len(vs), false)
	for _, v := range vs {
		buf = append(binary.BigEndian.AppendUint32(buf, uint32(len(v))), v...)
	}
	return buf
}

// appendBytesArray appends vs as an array of elem (bytea, or text or json, whose binary form
// is the text); a nil element is NULL, as pgx sends it.
func appendBytesArray(buf []byte, elem uint32, vs [][]byte) []byte {
	hasNull := false
	for _, v := range vs {
		hasNull = hasNull || v == nil
	}
	buf = appendArrayHeader(buf, elem, len(vs), hasNull)
	for _, v := range vs {
		if v == nil {
			buf = binary.BigEndian.AppendUint32(buf, 0xFFFFFFFF) // -1: NULL
			continue
		}
		buf = append(binary.BigEndian.AppendUint32(buf, uint32(len(v))), v...)
	}
	return buf
}

func appendBoolArray(buf []byte, vs []bool) []byte {
	buf = appendArrayHeader(buf, oidBool, len(vs), false)
	for _, v := range vs {
		b := byte(0)
		if v {
			b = 1
		}
		buf = append(binary.BigEndian.AppendUint32(buf, 1), b)
	}
	return buf
}

func appendInt2Array(buf []byte, vs []int16) []byte {
	buf = appendArrayHeader(buf, oidInt2, len(vs), false)
	for _, v := range vs {
		buf = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32(buf, 2), uint16(v))
	}
	return buf
}

// appendTimestamptzArray appends vs as a timestamptz[]: microseconds since 2000-01-01 UTC,
// truncated (as pgx does).
func appendTimestamptzArray(buf []byte, vs []time.Time) []byte {
	buf = appendArrayHeader(buf, oidTimestamptz, len(vs), false)
	for _, v := range vs {
		us := v.Unix()*1_000_000 + int64(v.Nanosecond())/1000 - microsecY2K
		buf = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(buf, 8), uint64(us))
	}
	return buf
}
