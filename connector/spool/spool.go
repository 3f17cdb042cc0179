// Package spool keeps verified webhook changes in a local, fsync'd append-only file while the
// state store cannot commit them, so the service can still acknowledge them (Appwrite never
// retries a delivery and disables a webhook after 10 failures), and hands them to the ledger in
// arrival order once the state store is back.
//
// One file, spool.log, in the spool directory: a header (magic and a format version), then
// records, each a length, a CRC-32C of its payload and the payload (format.go). Appends are
// group-committed as the ledger's recorder does: concurrent appends share one write and one
// fsync, and each returns only after the fsync that covers its record. A record is trusted only
// whole and with a matching checksum: at open, the first record that is incomplete or does not
// check out ends the file, and it is truncated there (a crash between write and fsync leaves
// such a torn tail; that record was never acknowledged).
//
// Drain reads the records in order and passes them, in batches, to a function that records
// them through the ledger's version guard. The offset drained so far is kept in memory only: a
// crash mid-drain drains again from the start, and the guard makes every change recorded twice
// a duplicate that changes nothing. Once everything is drained and no append is in flight, the
// file is truncated back to its header.
//
// It is written by hand because the shape is narrow and the failure cases are the point: an
// embedded key-value store (bbolt, pebble, badger) brings compaction, its own locking and an
// fsync policy of its own for what is a single append-only queue that is read once and then
// emptied, and the write-ahead-log libraries at hand (tidwall/wal and the like) fsync per entry
// or not at all, where this needs group commit and a hard size cap.
package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// FileName is the spool's file inside the spool directory.
const FileName = "spool.log"

// Errors of Append. Both mean the change was not spooled: the webhook answers 503.
var (
	// ErrFull: the change would take the spool over its size cap.
	ErrFull = errors.New("spool full")
	// ErrUnwritable: writing or syncing the file failed (disk full, I/O error), or the spool
	// is closed.
	ErrUnwritable = errors.New("spool unwritable")
)

// MaxBytesDefault is serve's Options.MaxBytes (state.spool_max_bytes): about 200,000 changes
// of 1 KiB.
const MaxBytesDefault = 256 << 20

// Options configures a Spool.
type Options struct {
	// Dir holds the file; created (0700) when missing. Required.
	Dir string
	// MaxBytes caps the file, header included; an append that would pass it fails with
	// ErrFull. Required (> 0).
	MaxBytes int64
	Log      *logrus.Entry
}

// Stats is the spool's part of /admin/status.
type Stats struct {
	Dir string `json:"dir"`
	// Bytes and Records are what is spooled and not yet drained.
	Bytes   int64 `json:"bytes"`
	Records int64 `json:"records"`
	// MaxBytes is the cap.
	MaxBytes int64 `json:"max_bytes"`
	// OldestAgeSeconds is the age of the oldest change not yet drained (0 when empty).
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// Error is why the last write failed, until one succeeds.
	Error string `json:"error,omitempty"`
}

// Spool is the local log. Its methods are safe for concurrent use.
type Spool struct {
	opts Options
	path string
	f    *os.File
	log  *logrus.Entry

	mu       sync.Mutex
	size     int64 // bytes written and synced, header included
	drained  int64 // offset up to which records were handed to the ledger (this run)
	records  int64 // records after drained
	oldest   time.Time
	writing  bool   // a leader is writing a group
	cur      *group // the group gathering
	inflight *group // the group being written
	lastErr  error  // the last write failure, until a write succeeds
	closed   bool
	idle     *sync.Cond // signalled when writing ends
	// dropped counts bytes cut off at open (a torn tail or corruption).
	dropped int64
}

// group is the appends sharing one write and fsync.
type group struct {
	buf     []byte
	n       int64
	first   time.Time
	done    chan struct{}
	err     error
	pending int64 // bytes of buf, for the cap while it is in flight
}

func newGroup() *group { return &group{done: make(chan struct{})} }

// Open opens (or creates) the spool in opts.Dir, truncating a torn or corrupt tail. It takes an
// exclusive lock on the file: two processes must never share a spool directory.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" || opts.MaxBytes <= 0 {
		return nil, errors.New("spool: a directory and a positive size cap are required")
	}
	if opts.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Log = logrus.NewEntry(l)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: creating %s: %w", opts.Dir, err)
	}
	path := filepath.Join(opts.Dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %s is in use by another process (each replica needs its own spool_dir): %w", path, err)
	}
	s := &Spool{opts: opts, path: path, f: f, log: opts.Log.WithField("component", "spool"), cur: newGroup()}
	s.idle = sync.NewCond(&s.mu)
	if err := s.recover(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// recover checks the header (writing it to a new file) and finds the end of the valid records.
func (s *Spool) recover() error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	size := fi.Size()
	if size < int64(headerLen) {
		// New, or a crash while the header was written (nothing was ever spooled).
		hdr := append([]byte(fileMagic), fileVersion)
		if err := s.f.Truncate(0); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if _, err := s.f.WriteAt(hdr, 0); err != nil {
			return fmt.Errorf("spool: writing the header: %w", err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if err := syncDir(s.opts.Dir); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.size, s.drained = int64(headerLen), int64(headerLen)
		return nil
	}
	hdr := make([]byte, headerLen)
	if _, err := s.f.ReadAt(hdr, 0); err != nil {
		return fmt.Errorf("spool: reading %s: %w", s.path, err)
	}
	if string(hdr[:len(fileMagic)]) != fileMagic {
		return fmt.Errorf("spool: %s is not a spool file (bad magic); move it away", s.path)
	}
	switch v := hdr[len(fileMagic)]; v {
	case fileVersion:
	case fileVersionV1:
		if err := s.upgradeHeader(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("spool: %s has format version %d, this binary reads %d and %d: drain it with the version that wrote it", s.path, v, fileVersionV1, fileVersion)
	}
	// One record in memory at a time: the file may be far larger than the memory limit.
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, int64(headerLen), size-int64(headerLen)), 1<<20)
	off := int64(headerLen)
	var buf []byte
	var bad error
	for off < size {
		if size-off < recordHeaderLen {
			bad = errors.New("incomplete record header")
			break
		}
		buf = append(buf[:0], make([]byte, recordHeaderLen)...)
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("spool: reading %s: %w", s.path, err)
		}
		n := int64(uint32le(buf))
		if n > MaxRecordBytes || off+recordHeaderLen+n > size {
			bad = fmt.Errorf("record of %d bytes runs past the end", n)
			break
		}
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(r, buf[recordHeaderLen:]); err != nil {
			return fmt.Errorf("spool: reading %s: %w", s.path, err)
		}
		e, k, err := nextRecord(buf)
		if err != nil || k == 0 {
			bad = err
			break
		}
		if s.records == 0 {
			s.oldest = e.ReceivedAt
		}
		s.records++
		off += int64(k)
	}
	if off < size {
		s.dropped = size - off
		s.log.WithError(bad).WithFields(logrus.Fields{"offset": off, "bytes": s.dropped}).
			Warn("spool: cutting off an incomplete or corrupt tail (a crash during a write leaves one; that change was never acknowledged)")
		if err := s.f.Truncate(off); err != nil {
			return fmt.Errorf("spool: truncating the torn tail: %w", err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	s.size, s.drained = off, int64(headerLen)
	return nil
}

// upgradeHeader marks a version 1 file as version 2 before anything is appended to it: its
// records stay readable (format.go), and a binary that reads only version 1 refuses the file
// rather than taking the longer records for a corrupt tail.
func (s *Spool) upgradeHeader() error {
	if _, err := s.f.WriteAt([]byte{fileVersion}, int64(len(fileMagic))); err != nil {
		return fmt.Errorf("spool: upgrading the header of %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Dropped is how many bytes Open cut off the end of the file: a torn write (never
// acknowledged) or a corrupt record (possibly acknowledged changes lost with the ones after it).
func (s *Spool) Dropped() int64 { return s.dropped }

// Append durably adds e and returns after the fsync that covers it. Concurrent appends share
// one write and fsync. The error wraps ErrFull or ErrUnwritable; ctx only bounds the wait for
// a full group, never a write in progress.
func (s *Spool) Append(ctx context.Context, e Entry) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("%w: closed", ErrUnwritable)
	}
	g := s.cur
	before := len(g.buf)
	g.buf = appendRecord(g.buf, &e)
	if s.size+s.inflightLocked()+int64(len(g.buf)) > s.opts.MaxBytes {
		g.buf = g.buf[:before]
		s.mu.Unlock()
		return fmt.Errorf("%w: spool_max_bytes %d reached", ErrFull, s.opts.MaxBytes)
	}
	if g.n == 0 {
		g.first = e.ReceivedAt
	}
	g.n++
	if s.writing {
		s.mu.Unlock()
		select {
		case <-g.done:
			return g.err
		case <-ctx.Done():
			// The group is written whatever happens; the caller answers non-2xx, which is
			// safe (the change may be drained anyway: a duplicate later is harmless).
			return fmt.Errorf("%w: %v", ErrUnwritable, ctx.Err())
		}
	}
	s.writing = true
	for {
		w := s.cur
		if w.n == 0 {
			break
		}
		s.cur = newGroup()
		w.pending = int64(len(w.buf))
		s.inflight = w
		off := s.size
		s.mu.Unlock()
		err := s.write(w.buf, off)
		s.mu.Lock()
		s.inflight = nil
		if err != nil {
			s.lastErr = err
			w.err = fmt.Errorf("%w: %v", ErrUnwritable, err)
		} else {
			s.lastErr = nil
			if s.records == 0 {
				s.oldest = w.first
			}
			s.size += int64(len(w.buf))
			s.records += w.n
		}
		close(w.done)
	}
	s.writing = false
	s.idle.Broadcast()
	s.mu.Unlock()
	<-g.done
	return g.err
}

func (s *Spool) inflightLocked() int64 {
	if s.inflight == nil {
		return 0
	}
	return s.inflight.pending
}

// write writes buf at off and syncs it; on failure it cuts the file back to off, so a partly
// written group is never followed by a later one (Open would stop at it).
func (s *Spool) write(buf []byte, off int64) error {
	if _, err := s.f.WriteAt(buf, off); err != nil {
		_ = s.f.Truncate(off)
		return fmt.Errorf("writing %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		_ = s.f.Truncate(off)
		return fmt.Errorf("syncing %s: %w", s.path, err)
	}
	return nil
}

// Empty reports whether nothing waits to be drained.
func (s *Spool) Empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drained >= s.size && s.cur.n == 0 && !s.writing
}

// Accepting reports whether the spool takes changes: open, the last write did not fail, and at
// least room bytes are free under the cap. Readiness uses it.
func (s *Spool) Accepting(room int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed && s.lastErr == nil && s.opts.MaxBytes-(s.size+s.inflightLocked()+int64(len(s.cur.buf))) >= room
}

// Stats reports what waits in the spool.
func (s *Spool) Stats(now time.Time) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Dir: s.opts.Dir, Bytes: s.size - s.drained, Records: s.records, MaxBytes: s.opts.MaxBytes}
	if s.records > 0 && !s.oldest.IsZero() {
		st.OldestAgeSeconds = max(0, now.Sub(s.oldest).Seconds())
	}
	if s.lastErr != nil {
		st.Error = s.lastErr.Error()
	}
	return st
}

// drainChunk is how much of the file Drain reads at once (more when one record is larger).
const drainChunk = 1 << 20

// Drain hands the spooled entries to record in arrival order, at most batch at a time, until
// the spool is empty, record fails, or ctx ends; then, when everything was drained and no
// append is in flight, it truncates the file to its header. It returns the entries handed over
// successfully. record must be idempotent (the ledger's version guard is): after a crash the
// next Open drains from the start again.
func (s *Spool) Drain(ctx context.Context, batch int, record func(ctx context.Context, es []Entry) error) (int, error) {
	if batch <= 0 {
		batch = 512
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		s.mu.Lock()
		from, to := s.drained, s.size
		s.mu.Unlock()
		if from >= to {
			return total, s.truncateIfDrained()
		}
		es, used, next, err := s.read(from, to, batch)
		if err != nil {
			return total, err
		}
		if err := record(ctx, es); err != nil {
			return total, err
		}
		total += len(es)
		s.mu.Lock()
		s.drained = from + used
		s.records -= int64(len(es))
		if !next.IsZero() {
			s.oldest = next
		}
		s.mu.Unlock()
	}
}

// read decodes up to limit records from [from, to) and returns them, the bytes they took and the
// arrival time of the record after them when it was read too.
func (s *Spool) read(from, to int64, limit int) ([]Entry, int64, time.Time, error) {
	n := min(to-from, drainChunk)
	buf := make([]byte, n)
	if _, err := s.f.ReadAt(buf, from); err != nil {
		return nil, 0, time.Time{}, fmt.Errorf("spool: reading %s: %w", s.path, err)
	}
	var es []Entry
	var used int64
	for {
		e, k, err := nextRecord(buf[used:])
		if err != nil {
			return nil, 0, time.Time{}, fmt.Errorf("spool: %s at offset %d: %w", s.path, from+used, err)
		}
		if k == 0 {
			if len(es) > 0 {
				return es, used, time.Time{}, nil
			}
			// One record larger than the chunk (used is 0: nothing was decoded yet): read it
			// whole.
			need := recordHeaderLen + int64(uint32le(buf))
			if len(buf) < recordHeaderLen || from+need > to || need <= int64(len(buf)) {
				return nil, 0, time.Time{}, fmt.Errorf("spool: %s at offset %d: %w: record runs past the end", s.path, from, ErrCorrupt)
			}
			buf = make([]byte, need)
			if _, err := s.f.ReadAt(buf, from); err != nil {
				return nil, 0, time.Time{}, fmt.Errorf("spool: reading %s: %w", s.path, err)
			}
			continue
		}
		if len(es) == limit {
			return es, used, e.ReceivedAt, nil
		}
		es = append(es, e)
		used += int64(k)
		if used == int64(len(buf)) {
			return es, used, time.Time{}, nil
		}
	}
}

func uint32le(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// truncateIfDrained empties the file when everything written was drained and nothing is being
// appended.
func (s *Spool) truncateIfDrained() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing || s.cur.n > 0 || s.drained < s.size || s.size == int64(headerLen) {
		return nil
	}
	if err := s.f.Truncate(int64(headerLen)); err != nil {
		return fmt.Errorf("spool: truncating %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("spool: syncing %s: %w", s.path, err)
	}
	s.size, s.drained, s.records, s.oldest = int64(headerLen), int64(headerLen), 0, time.Time{}
	return nil
}

// Close waits for the write in progress, refuses later appends and closes the file. What is
// not drained stays in it for the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	s.closed = true
	for s.writing {
		s.idle.Wait()
	}
	s.mu.Unlock()
	return s.f.Close()
}
