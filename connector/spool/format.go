package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// The file starts with fileMagic and one version byte. Records are
//
//	u32 length of the payload (little endian)
//	u32 CRC-32C (Castagnoli) of the payload
//	payload: u8 op, i64 updated_at seconds, u32 updated_at nanoseconds, i64 received_at
//	         Unix nanoseconds, then uvarint-length-prefixed byte strings: database, table,
//	         row id, sequence, action, event, hash, row, and from version 2 on: actor, source
//
// Version 2 only appends actor and source (row history keeps them per version). A version 1
// record ends after row and reads as actor and source empty, so a version 1 file still drains:
// Open marks it version 2 before appending to it (a binary that only reads version 1 then
// refuses the file instead of cutting the new records off as corrupt).
//
// Every field is written explicitly, never through encoding/gob or JSON of the struct: a field
// added to connector.Change later changes nothing here until a new version says how to store
// it. Only webhook changes (and quarantine replays) are spooled, so fields that only REST reads
// set (Authoritative) have no place here.
const (
	fileMagic   = "AWSYNCSP"
	fileVersion = 2
	// fileVersionV1 is the version before actor and source; its files still drain.
	fileVersionV1 = 1
	headerLen     = len(fileMagic) + 1
	// recordHeaderLen is the length and checksum in front of each payload.
	recordHeaderLen = 8
	// MaxRecordBytes bounds one payload; a length above it is corruption, not a record (a
	// webhook body is at most limits.max_body_bytes, a few MiB).
	MaxRecordBytes = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Entry is one spooled change and when it was taken.
type Entry struct {
	Change connector.Change
	// ReceivedAt is when the spool took it.
	ReceivedAt time.Time
}

// ErrCorrupt: bytes that are not a record of this format.
var ErrCorrupt = errors.New("spool record corrupt")

// appendRecord appends e's record (header and payload) to b.
func appendRecord(b []byte, e *Entry) []byte {
	start := len(b)
	b = append(b, make([]byte, recordHeaderLen)...)
	ch := &e.Change
	b = append(b, byte(ch.Op))
	b = binary.LittleEndian.AppendUint64(b, uint64(ch.UpdatedAt.Unix()))
	b = binary.LittleEndian.AppendUint32(b, uint32(ch.UpdatedAt.Nanosecond()))
	b = binary.LittleEndian.AppendUint64(b, uint64(e.ReceivedAt.UnixNano()))
	for _, s := range [...]string{ch.Key.Database, ch.Key.Table, ch.RowID, ch.Sequence, ch.Action, ch.Event} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(ch.Hash)))
	b = append(b, ch.Hash...)
	b = binary.AppendUvarint(b, uint64(len(ch.Row)))
	b = append(b, ch.Row...)
	for _, s := range [...]string{ch.Actor, ch.Source} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	payload := b[start+recordHeaderLen:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// nextRecord reads the record at the start of b. It returns the entry and the bytes it took;
// n == 0 with a nil error means b holds only the beginning of a record (a torn tail after a
// crash, or a write still in progress). A checksum or structure mismatch is ErrCorrupt.
func nextRecord(b []byte) (e Entry, n int, err error) {
	if len(b) < recordHeaderLen {
		return Entry{}, 0, nil
	}
	size := binary.LittleEndian.Uint32(b)
	if size > MaxRecordBytes {
		return Entry{}, 0, fmt.Errorf("%w: length %d over %d", ErrCorrupt, size, MaxRecordBytes)
	}
	if len(b) < recordHeaderLen+int(size) {
		return Entry{}, 0, nil
	}
	payload := b[recordHeaderLen : recordHeaderLen+int(size)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return Entry{}, 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	e, err = decodePayload(payload)
	if err != nil {
		return Entry{}, 0, err
	}
	return e, recordHeaderLen + int(size), nil
}

// decodePayload decodes a payload whose checksum matched. It copies what it keeps: the
// entry never aliases b.
func decodePayload(p []byte) (Entry, error) {
	const fixed = 1 + 8 + 4 + 8
	if len(p) < fixed {
		return Entry{}, fmt.Errorf("%w: payload of %d bytes", ErrCorrupt, len(p))
	}
	var e Entry
	ch := &e.Change
	ch.Op = connector.Op(p[0])
	if ch.Op != connector.OpUpsert && ch.Op != connector.OpDelete {
		return Entry{}, fmt.Errorf("%w: op %d", ErrCorrupt, p[0])
	}
	sec := int64(binary.LittleEndian.Uint64(p[1:]))
	nsec := binary.LittleEndian.Uint32(p[9:])
	if nsec >= 1e9 {
		return Entry{}, fmt.Errorf("%w: nanoseconds %d", ErrCorrupt, nsec)
	}
	ch.UpdatedAt = time.Unix(sec, int64(nsec)).UTC()
	e.ReceivedAt = time.Unix(0, int64(binary.LittleEndian.Uint64(p[13:]))).UTC()
	p = p[fixed:]
	field := func() ([]byte, error) {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			return nil, fmt.Errorf("%w: field length", ErrCorrupt)
		}
		f := p[k : k+int(l)]
		p = p[k+int(l):]
		return f, nil
	}
	strs := [...]*string{&ch.Key.Database, &ch.Key.Table, &ch.RowID, &ch.Sequence, &ch.Action, &ch.Event}
	for _, s := range strs {
		f, err := field()
		if err != nil {
			return Entry{}, err
		}
		*s = string(f)
	}
	for _, dst := range [...]*[]byte{&ch.Hash, (*[]byte)(&ch.Row)} {
		f, err := field()
		if err != nil {
			return Entry{}, err
		}
		if len(f) > 0 {
			*dst = append([]byte(nil), f...)
		}
	}
	if len(p) > 0 { // version 2: actor and source; a version 1 record ends here
		for _, s := range [...]*string{&ch.Actor, &ch.Source} {
			f, err := field()
			if err != nil {
				return Entry{}, err
			}
			*s = string(f)
		}
	}
	if len(p) != 0 {
		return Entry{}, fmt.Errorf("%w: %d bytes after the last field", ErrCorrupt, len(p))
	}
	return e, nil
}

func crc32Of(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
