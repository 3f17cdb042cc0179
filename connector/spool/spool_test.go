package spool

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

func entry(i int) Entry {
	row := fmt.Sprintf(`{"$id":"r%d","$updatedAt":"2026-03-26T10:00:00.%03d+00:00","title":"t%d"}`, i, i%1000, i)
	return Entry{
		Change: connector.Change{Key: connector.TableKey{Database: "main", Table: "posts"}, RowID: fmt.Sprintf("r%d", i),
			Op: connector.OpUpsert, UpdatedAt: time.Date(2026, 3, 26, 10, 0, 0, (i%1000)*1e6, time.UTC), Sequence: fmt.Sprint(i),
			Action: "update", Event: fmt.Sprintf("databases.main.tables.posts.rows.r%d.update", i), Row: json.RawMessage(row),
			Hash: []byte{1, 2, byte(i)}, Actor: fmt.Sprintf("user%d", i), Source: connector.SourceWebhook},
		ReceivedAt: time.Unix(1_700_000_000+int64(i), 0).UTC(),
	}
}

func open(t *testing.T, dir string, max int64) *Spool {
	t.Helper()
	s, err := Open(Options{Dir: dir, MaxBytes: max})
	require.NoError(t, err)
	return s
}

// drainAll drains s and returns what it handed over.
func drainAll(t *testing.T, s *Spool) []Entry {
	t.Helper()
	var got []Entry
	_, err := s.Drain(context.Background(), 7, func(_ context.Context, es []Entry) error {
		got = append(got, es...)
		return nil
	})
	require.NoError(t, err)
	return got
}

// Every field of a change survives the spool byte for byte, in arrival order, across a
// restart; after a drain the file is back to its header.
func TestAppendRestartDrain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	var want []Entry
	for i := range 20 {
		e := entry(i)
		if i == 3 {
			e.Change.Op, e.Change.Sequence, e.Change.Hash = connector.OpDelete, "", nil
		}
		want = append(want, e)
		require.NoError(t, s.Append(context.Background(), e))
	}
	require.Equal(t, int64(20), s.Stats(time.Now()).Records)
	require.NoError(t, s.Close())

	s = open(t, dir, 1<<20)
	defer s.Close()
	st := s.Stats(want[0].ReceivedAt.Add(10 * time.Second))
	require.Equal(t, int64(20), st.Records)
	require.InDelta(t, 10, st.OldestAgeSeconds, 0.001, "the age is the oldest record's, also after a restart")
	require.Equal(t, want, drainAll(t, s))
	require.True(t, s.Empty())
	fi, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	require.Equal(t, int64(headerLen), fi.Size(), "a drained spool is truncated")
	require.Zero(t, s.Stats(time.Now()).Bytes)
}

// A failing drain hands the same entries over again next time: nothing is skipped.
func TestDrainFailureKeepsEntries(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), 1<<20)
	defer s.Close()
	for i := range 10 {
		require.NoError(t, s.Append(context.Background(), entry(i)))
	}
	calls := 0
	boom := errors.New("state store down")
	n, err := s.Drain(context.Background(), 4, func(_ context.Context, es []Entry) error {
		calls++
		if calls == 2 {
			return boom
		}
		return nil
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, 4, n)
	got := drainAll(t, s)
	require.Len(t, got, 6)
	require.Equal(t, "r4", got[0].Change.RowID)
}

// Concurrent appends share fsyncs and all come back, each exactly once.
func TestConcurrentAppends(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), 16<<20)
	defer s.Close()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				require.NoError(t, s.Append(context.Background(), entry(w*1000+i)))
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, e := range drainAll(t, s) {
		require.False(t, seen[e.Change.RowID])
		seen[e.Change.RowID] = true
	}
	require.Len(t, seen, 400)
}

// A crash between write and fsync leaves part of a record at the end: Open cuts it off and
// keeps every whole record before it; later appends follow the good ones.
func TestTornTailIsCutOff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	for i := range 3 {
		require.NoError(t, s.Append(context.Background(), entry(i)))
	}
	require.NoError(t, s.Close())
	path := filepath.Join(dir, FileName)
	rec := appendRecord(nil, ptr(entry(99)))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(rec[:len(rec)/2])
	require.NoError(t, err)
	require.NoError(t, f.Close())

	s = open(t, dir, 1<<20)
	defer s.Close()
	require.Equal(t, int64(len(rec)/2), s.Dropped())
	require.NoError(t, s.Append(context.Background(), entry(3)))
	got := drainAll(t, s)
	require.Len(t, got, 4)
	require.Equal(t, "r3", got[3].Change.RowID)
}

// A crash can also leave less than a record header, or a length that runs past the end.
func TestShortTails(t *testing.T) {
	t.Parallel()
	for name, tail := range map[string][]byte{
		"three bytes":     {1, 2, 3},
		"length past end": {0xff, 0xff, 0, 0, 0, 0, 0, 0, 1, 2},
		"length too big":  {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, 1<<20)
			require.NoError(t, s.Append(context.Background(), entry(0)))
			require.NoError(t, s.Close())
			f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_WRONLY|os.O_APPEND, 0)
			require.NoError(t, err)
			_, err = f.Write(tail)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			s = open(t, dir, 1<<20)
			defer s.Close()
			require.Equal(t, int64(len(tail)), s.Dropped())
			got := drainAll(t, s)
			require.Len(t, got, 1)
		})
	}
}

// A record whose checksum does not match is never read as a change: the file ends before it.
func TestChecksumMismatchEndsTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	for i := range 3 {
		require.NoError(t, s.Append(context.Background(), entry(i)))
	}
	require.NoError(t, s.Close())
	path := filepath.Join(dir, FileName)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	second := headerLen + len(appendRecord(nil, ptr(entry(0))))
	data[second+recordHeaderLen+20] ^= 0x40 // one bit of the second record's payload
	require.NoError(t, os.WriteFile(path, data, 0o600))

	s = open(t, dir, 1<<20)
	defer s.Close()
	require.Positive(t, s.Dropped())
	got := drainAll(t, s)
	require.Len(t, got, 1)
	require.Equal(t, "r0", got[0].Change.RowID)
}

// Past the cap an append fails with ErrFull and leaves the spool as it was; after a drain
// there is room again.
func TestFull(t *testing.T) {
	t.Parallel()
	one := int64(len(appendRecord(nil, ptr(entry(0)))))
	s := open(t, t.TempDir(), int64(headerLen)+3*one+one/2)
	defer s.Close()
	for i := range 3 {
		require.NoError(t, s.Append(context.Background(), entry(i)))
	}
	require.True(t, s.Accepting(one/2))
	require.False(t, s.Accepting(one))
	require.ErrorIs(t, s.Append(context.Background(), entry(3)), ErrFull)
	require.Len(t, drainAll(t, s), 3)
	require.NoError(t, s.Append(context.Background(), entry(4)))
}

// A directory that cannot be created or written is an error at Open (serve then answers 503
// while the state store is down); a closed spool refuses appends with ErrUnwritable.
func TestUnwritable(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err := Open(Options{Dir: filepath.Join(file, "spool"), MaxBytes: 1 << 20})
	require.Error(t, err)

	s := open(t, t.TempDir(), 1<<20)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Append(context.Background(), entry(0)), ErrUnwritable)
}

// Two processes must never append to one file.
func TestExclusive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	defer s.Close()
	_, err := Open(Options{Dir: dir, MaxBytes: 1 << 20})
	require.ErrorContains(t, err, "in use by another process")
}

// A file of another format or version is refused, never truncated.
func TestForeignFileRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	require.NoError(t, os.WriteFile(path, []byte("AWSYNCSP\x03rest"), 0o600))
	_, err := Open(Options{Dir: dir, MaxBytes: 1 << 20})
	require.ErrorContains(t, err, "format version 3")
	data, _ := os.ReadFile(path)
	require.Equal(t, "AWSYNCSP\x03rest", string(data))
}

// appendV1Record appends e's record as format version 1 wrote it: no actor and source.
func appendV1Record(b []byte, e *Entry) []byte {
	v1 := *e
	v1.Change.Actor, v1.Change.Source = "", ""
	start := len(b)
	b = appendRecord(b, &v1)
	b = b[:len(b)-2] // the two empty fields version 2 appends
	payload := b[start+recordHeaderLen:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32Of(payload))
	return b
}

// A version 1 file left by the previous binary (an outage not drained before the upgrade)
// still drains; what is appended after it keeps actor and source, and the file is marked
// version 2 before that, so a version 1 binary would refuse it rather than cut it off.
func TestVersion1FileStillDrains(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	file := append([]byte(fileMagic), fileVersionV1)
	old := []Entry{entry(1), entry(2)}
	for i := range old {
		file = appendV1Record(file, &old[i])
		old[i].Change.Actor, old[i].Change.Source = "", ""
	}
	require.NoError(t, os.WriteFile(path, file, 0o600))

	s := open(t, dir, 1<<20)
	defer s.Close()
	require.Equal(t, int64(2), s.Stats(time.Now()).Records, "no record was taken for a torn tail")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, byte(fileVersion), data[len(fileMagic)], "marked version 2 before any append")
	require.NoError(t, s.Append(context.Background(), entry(3)))
	require.Equal(t, append(old, entry(3)), drainAll(t, s))
}

// A record larger than the drain's read chunk is read whole.
func TestLargeRecord(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), 8<<20)
	defer s.Close()
	e := entry(1)
	big := make([]byte, 0, drainChunk+100)
	big = append(big, `{"x":"`...)
	for len(big) < drainChunk+90 {
		big = append(big, 'a')
	}
	e.Change.Row = append(big, `"}`...)
	require.NoError(t, s.Append(context.Background(), entry(0)))
	require.NoError(t, s.Append(context.Background(), e))
	got := drainAll(t, s)
	require.Len(t, got, 2)
	require.Equal(t, e.Change.Row, got[1].Change.Row)
}

func ptr(e Entry) *Entry { return &e }

// FuzzDecode holds the record decoder to: never panic, never accept bytes whose checksum does
// not match, and decode what appendRecord wrote to the same entry.
func FuzzDecode(f *testing.F) {
	f.Add(appendRecord(nil, ptr(entry(1))))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, n, err := nextRecord(b)
		if err != nil || n == 0 {
			return
		}
		require.GreaterOrEqual(t, len(b), n)
		payload := b[recordHeaderLen:n]
		require.Equal(t, binary.LittleEndian.Uint32(b[4:]), crc32Of(payload))
		again := appendRecord(nil, &e)
		e2, n2, err := nextRecord(again)
		require.NoError(t, err)
		require.Equal(t, len(again), n2)
		require.Equal(t, e, e2)
	})
}
