// Package spool provides a durable, append-only local queue of records in
// segment files: the buffer between accepting analytics events and
// inserting them into the warehouse.
//
// Append returns only once its records are on disk. One writer goroutine
// owns the active segment; appenders hand it their records, and it writes
// everything that queued up while the previous fsync ran, then syncs once
// for all of them (group commit), so many concurrent requests share one
// fsync.
//
// One reader drains the spool. It reads records from its checkpoint in
// order, and Commit moves the checkpoint durably past what it has handed
// on, deleting segments it has fully consumed. The checkpoint also holds an
// in-flight mark, set with MarkInflight before a batch is handed on: after
// a crash, Recovered tells the reader which records may already have
// reached their destination, so that it can check before sending them
// again.
//
// Each record is framed as a 4-byte little-endian length, a 4-byte CRC-32C
// of the payload, and the payload. A record torn by a crash (a length, a
// payload or a checksum cut short) can only be at the end of the newest
// segment, since segments are synced before a new one starts; Open
// truncates it. Such a record was never acknowledged.
//
// The spool has a size bound: an Append that would make the undrained
// bytes exceed Options.MaxBytes fails with ErrFull, so an outage
// downstream turns into back-pressure instead of a disk or memory that
// fills up.
package spool

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	// ErrFull means the spool holds Options.MaxBytes of undrained records.
	ErrFull = errors.New("spool full")
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("spool closed")
	// ErrTooLarge means one record is larger than MaxRecordBytes.
	ErrTooLarge = errors.New("spool record too large")
	// ErrInUse means another process has the spool open.
	ErrInUse = errors.New("spool in use by another process")
)

// Defaults for zero Options fields.
const (
	DefaultMaxBytes     = 256 << 20
	DefaultSegmentBytes = 16 << 20
	// MaxRecordBytes bounds one record; a larger length read from disk is
	// taken for a torn or damaged frame.
	MaxRecordBytes = 1 << 20
)

const (
	headerSize     = 8
	segmentPrefix  = "seg-"
	segmentSuffix  = ".log"
	checkpointFile = "checkpoint.json"
	lockFile       = "LOCK"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configure a spool.
type Options struct {
	// MaxBytes bounds the bytes appended and not yet committed by the
	// reader. Zero means DefaultMaxBytes.
	MaxBytes int64
	// SegmentBytes is the size at which the writer starts a new segment.
	// Zero means DefaultSegmentBytes.
	SegmentBytes int64
	// Logger receives notices about recovery; nil discards them.
	Logger *slog.Logger
}

// Position is a place in the spool: a segment number and a byte offset in
// it.
type Position struct {
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
}

// Less reports whether p comes before q.
func (p Position) Less(q Position) bool {
	return p.Segment < q.Segment || (p.Segment == q.Segment && p.Offset < q.Offset)
}

// checkpoint is the reader's durable state.
type checkpoint struct {
	// Committed is where the next unconsumed record starts.
	Committed Position `json:"committed"`
	// Inflight is the end of the batch handed on last; it is past
	// Committed while a batch is in flight.
	Inflight Position `json:"inflight"`
}

// Spool is a durable record queue with one reader. Append is safe for
// concurrent use. Next, Pending and Rewind must be called from one
// goroutine, and MarkInflight, Commit and CommitAndMark from one
// goroutine, which may be another: a reader can then read the next batch while the last one is
// handed on and committed.
type Spool struct {
	dir  string
	opts Options
	log  *slog.Logger

	reqs    chan *appendReq
	stopped chan struct{} // closed when the writer goroutine ends
	closing chan struct{}
	once    sync.Once

	// used counts bytes appended (or reserved by a running Append) and not
	// yet committed.
	used atomic.Int64
	// appends and syncs count Append calls written and fsyncs made, to show
	// how well group commit shares them.
	appends, syncs atomic.Uint64

	// mu guards the fields below, shared by writer and reader.
	mu       sync.Mutex
	durable  Position      // end of the synced records
	notify   chan struct{} // closed and replaced when durable moves
	segSizes map[uint64]int64
	cp       checkpoint
	closed   bool

	// Writer state, owned by the writer goroutine.
	active    *os.File
	activeSeg uint64
	activeOff int64
	buf       []byte

	// lock holds an exclusive flock on the folder while the spool is
	// open: two writers on one spool would interleave their records.
	lock *os.File

	// Reader state, owned by the reader. rbuf caches the bytes of rfile
	// from offset rbufAt, read in large chunks but never past the synced
	// end, so that the reader makes a few large reads instead of two
	// small ones per record and never sees bytes still being written.
	rfile  *os.File
	rpos   Position
	rbuf   []byte
	rbufAt int64
}

// readChunk is the size of the reader's reads.
const readChunk = 256 << 10

// arenaChunk is the size of the allocations Next copies records into.
const arenaChunk = 256 << 10

type appendReq struct {
	recs [][]byte
	size int64
	done chan error
}

// Open opens the spool in dir, creating it if needed, and repairs a torn
// record at the end of the newest segment.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s := &Spool{
		dir:      dir,
		opts:     opts,
		log:      log,
		reqs:     make(chan *appendReq, 1024),
		stopped:  make(chan struct{}),
		closing:  make(chan struct{}),
		notify:   make(chan struct{}),
		segSizes: map[uint64]int64{},
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("open spool %s: %w", dir, ErrInUse)
		}
		return nil, fmt.Errorf("open spool %s: lock: %w", dir, err)
	}
	s.lock = lock
	if err := s.load(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	go s.writer()
	return s, nil
}

// load reads the checkpoint and the segments, truncates a torn tail and
// opens (or creates) the active segment.
func (s *Spool) load() error {
	cp, err := s.readCheckpoint()
	if err != nil {
		return err
	}
	segs, err := s.listSegments()
	if err != nil {
		return err
	}
	// Segments wholly before the checkpoint were consumed; a crash between
	// committing and deleting can leave them behind.
	var live []uint64
	for _, seg := range segs {
		if seg < cp.Committed.Segment {
			if err := os.Remove(s.segPath(seg)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		live = append(live, seg)
	}
	for i, seg := range live {
		size, err := s.validLength(seg)
		if err != nil {
			return err
		}
		info, err := os.Stat(s.segPath(seg))
		if err != nil {
			return err
		}
		if size < info.Size() {
			if i != len(live)-1 {
				// Only the newest segment can be torn; damage elsewhere is
				// reported and the reader stops at it.
				s.log.Warn("spool segment damaged before its end; records after the damage are skipped",
					slog.String("segment", s.segPath(seg)), slog.Int64("valid_bytes", size), slog.Int64("file_bytes", info.Size()))
			} else {
				s.log.Warn("spool: truncating a torn record left by a crash",
					slog.String("segment", s.segPath(seg)), slog.Int64("valid_bytes", size), slog.Int64("file_bytes", info.Size()))
				if err := os.Truncate(s.segPath(seg), size); err != nil {
					return err
				}
			}
		}
		s.segSizes[seg] = size
	}
	next := max(cp.Committed.Segment, 1)
	if len(live) > 0 {
		next = live[len(live)-1]
	}
	switch {
	case len(live) == 0:
		// Nothing left on disk: start afresh where the checkpoint is.
		cp.Committed = Position{Segment: next}
	case cp.Committed.Segment < live[0]:
		cp.Committed = Position{Segment: live[0]}
	case cp.Committed.Offset > s.segSizes[cp.Committed.Segment]:
		// The checkpoint is past the valid records; no record after it
		// can be read, so the reader starts at the end.
		cp.Committed.Offset = s.segSizes[cp.Committed.Segment]
	}
	if cp.Inflight.Less(cp.Committed) {
		cp.Inflight = cp.Committed
	}
	s.cp = cp

	f, err := os.OpenFile(s.segPath(next), os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	off := s.segSizes[next]
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	s.active, s.activeSeg, s.activeOff = f, next, off
	s.segSizes[next] = off
	s.durable = Position{Segment: next, Offset: off}

	var used int64
	for seg, size := range s.segSizes {
		if seg >= cp.Committed.Segment {
			used += size
		}
	}
	used -= cp.Committed.Offset
	s.used.Store(max(used, 0))
	s.rpos = cp.Committed
	return nil
}

// validLength returns the length of the valid prefix of a segment: whole
// records with matching checksums.
func (s *Spool) validLength(seg uint64) (int64, error) {
	f, err := os.Open(s.segPath(seg))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := &countingReader{r: f}
	var hdr [headerSize]byte
	var payload []byte
	var valid int64
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return valid, nil
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		sum := binary.LittleEndian.Uint32(hdr[4:8])
		if n > MaxRecordBytes {
			return valid, nil
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return valid, nil
		}
		if crc32.Checksum(payload, castagnoli) != sum {
			return valid, nil
		}
		valid = r.n
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (s *Spool) segPath(seg uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s%016d%s", segmentPrefix, seg, segmentSuffix))
}

func (s *Spool) listSegments() ([]uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var segs []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, segmentPrefix) || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segmentPrefix), segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, n)
	}
	slices.Sort(segs)
	return segs, nil
}

func (s *Spool) readCheckpoint() (checkpoint, error) {
	var cp checkpoint
	raw, err := os.ReadFile(filepath.Join(s.dir, checkpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return cp, nil
	}
	if err != nil {
		return cp, err
	}
	if err := json.Unmarshal(raw, &cp); err != nil {
		return cp, fmt.Errorf("checkpoint: %w", err)
	}
	return cp, nil
}

// writeCheckpoint replaces the checkpoint file atomically and durably.
func (s *Spool) writeCheckpoint(cp checkpoint) error {
	raw, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, checkpointFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, checkpointFile)); err != nil {
		return err
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Append writes records durably. It returns nil once they, and every record
// appended before them, are synced to disk; ErrFull when they do not fit
// under MaxBytes; ctx's error when ctx ends before the records are queued
// for writing (after that it waits for the write, which takes
// milliseconds).
func (s *Spool) Append(ctx context.Context, recs ...[]byte) error {
	if len(recs) == 0 {
		return nil
	}
	var size int64
	for _, r := range recs {
		if len(r) > MaxRecordBytes {
			return ErrTooLarge
		}
		size += int64(len(r)) + headerSize
	}
	if s.used.Add(size) > s.opts.MaxBytes {
		s.used.Add(-size)
		return ErrFull
	}
	req := &appendReq{recs: recs, size: size, done: make(chan error, 1)}
	select {
	case s.reqs <- req:
	case <-s.closing:
		s.used.Add(-size)
		return ErrClosed
	case <-ctx.Done():
		s.used.Add(-size)
		return ctx.Err()
	}
	// Once queued, the records are the writer's until it answers, so
	// Append waits for it whatever ctx says: the caller may reuse their
	// buffers as soon as Append returns.
	select {
	case err := <-req.done:
		return err
	case <-s.stopped:
		// The writer may have finished the request just before it
		// stopped; otherwise the request will never be written.
		select {
		case err := <-req.done:
			return err
		default:
			s.used.Add(-size)
			return ErrClosed
		}
	}
}

// Stats reports how many Append calls were written and how many fsyncs
// that took.
func (s *Spool) Stats() (appends, syncs uint64) { return s.appends.Load(), s.syncs.Load() }

// Used returns the bytes appended and not yet committed.
func (s *Spool) Used() int64 { return s.used.Load() }

// writer is the one goroutine writing segments.
func (s *Spool) writer() {
	defer close(s.stopped)
	var group []*appendReq
	for {
		group = group[:0]
		select {
		case req := <-s.reqs:
			group = append(group, req)
		case <-s.closing:
			// Finish what is queued, then stop.
			for {
				select {
				case req := <-s.reqs:
					group = append(group, req)
					continue
				default:
				}
				break
			}
			if len(group) > 0 {
				s.writeGroup(group)
			}
			return
		}
		// Take everything that queued up meanwhile, up to a bound that
		// keeps one write's buffer reasonable.
		var bytes int64 = group[0].size
	collect:
		for bytes < 8<<20 {
			select {
			case req := <-s.reqs:
				group = append(group, req)
				bytes += req.size
			default:
				break collect
			}
		}
		s.writeGroup(group)
	}
}

func (s *Spool) writeGroup(group []*appendReq) {
	buf := s.buf[:0]
	for _, req := range group {
		for _, rec := range req.recs {
			var hdr [headerSize]byte
			binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(rec)))
			binary.LittleEndian.PutUint32(hdr[4:8], crc32.Checksum(rec, castagnoli))
			buf = append(buf, hdr[:]...)
			buf = append(buf, rec...)
		}
	}
	err := s.writeSynced(buf)
	if cap(buf) <= 16<<20 {
		s.buf = buf[:0]
	} else {
		s.buf = nil
	}
	s.appends.Add(uint64(len(group)))
	for _, req := range group {
		if err != nil {
			s.used.Add(-req.size)
		}
		req.done <- err
	}
}

// writeSynced appends buf to the active segment and syncs it, starting a
// new segment first when the active one is full.
func (s *Spool) writeSynced(buf []byte) error {
	if s.activeOff >= s.opts.SegmentBytes {
		if err := s.rotate(); err != nil {
			return fmt.Errorf("spool: start segment: %w", err)
		}
	}
	if _, err := s.active.Write(buf); err != nil {
		// A short write leaves a torn record; cut it off so that later
		// records stay readable.
		_ = s.active.Truncate(s.activeOff)
		_, _ = s.active.Seek(s.activeOff, io.SeekStart)
		return fmt.Errorf("spool: write: %w", err)
	}
	if err := syscall.Fdatasync(int(s.active.Fd())); err != nil {
		return fmt.Errorf("spool: sync: %w", err)
	}
	s.syncs.Add(1)
	s.activeOff += int64(len(buf))
	s.mu.Lock()
	s.segSizes[s.activeSeg] = s.activeOff
	s.durable = Position{Segment: s.activeSeg, Offset: s.activeOff}
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func (s *Spool) rotate() error {
	next := s.activeSeg + 1
	f, err := os.OpenFile(s.segPath(next), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	old := s.active
	s.mu.Lock()
	s.active, s.activeSeg, s.activeOff = f, next, 0
	s.segSizes[next] = 0
	s.durable = Position{Segment: next}
	s.mu.Unlock()
	return old.Close()
}

// Batch is a run of records read from the spool.
type Batch struct {
	// Records are the payloads, in append order, in memory of their
	// own: they stay valid after the next call of Next.
	Records [][]byte
	// Start is where the first record begins; End is where the record
	// after the last one begins.
	Start, End Position
}

// Recovered returns the batch that was in flight when the process stopped,
// as positions: records from start to end may already have reached their
// destination. ok is false when nothing was in flight.
func (s *Spool) Recovered() (start, end Position, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cp.Committed, s.cp.Inflight, s.cp.Committed.Less(s.cp.Inflight)
}

// Next reads up to maxRecords records from the reader's position, not
// past limit when limit is non-zero. When fewer are available it waits for
// more until wait has passed since the call, then returns what it has,
// possibly nothing. It returns early with what it has when ctx ends.
func (s *Spool) Next(ctx context.Context, maxRecords int, wait time.Duration, limit *Position) (Batch, error) {
	b := Batch{Start: s.rpos, End: s.rpos}
	var arena []byte
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for len(b.Records) < maxRecords {
		if limit != nil && !s.rpos.Less(*limit) {
			return b, nil
		}
		s.mu.Lock()
		durable, notify, closed := s.durable, s.notify, s.closed
		s.mu.Unlock()
		if closed {
			return b, ErrClosed
		}
		if !s.rpos.Less(durable) {
			// Caught up with the writer: wait for more.
			select {
			case <-notify:
				continue
			case <-deadline.C:
				return b, nil
			case <-ctx.Done():
				return b, nil
			}
		}
		if s.rfile == nil {
			f, err := os.Open(s.segPath(s.rpos.Segment))
			if err != nil {
				return b, fmt.Errorf("spool: open segment: %w", err)
			}
			s.rfile = f
			s.rbuf = s.rbuf[:0]
			s.rbufAt = 0
		}
		// The segment's end: its synced size when it is the active one,
		// its final size when the writer has moved on.
		end := durable.Offset
		if s.rpos.Segment < durable.Segment {
			s.mu.Lock()
			end = s.segSizes[s.rpos.Segment]
			s.mu.Unlock()
		}
		if s.rpos.Offset >= end {
			// This segment is finished; go on to the next one.
			s.rfile.Close()
			s.rfile = nil
			s.rpos = Position{Segment: s.rpos.Segment + 1}
			b.End = s.rpos
			continue
		}
		hdr, err := s.readAt(s.rpos.Offset, headerSize, end)
		if err != nil {
			return b, s.skipDamaged(&b, "header", err)
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		sum := binary.LittleEndian.Uint32(hdr[4:8])
		if n > MaxRecordBytes || s.rpos.Offset+headerSize+int64(n) > end {
			return b, s.skipDamaged(&b, "length", nil)
		}
		payload, err := s.readAt(s.rpos.Offset+headerSize, int(n), end)
		if err != nil {
			return b, s.skipDamaged(&b, "payload", err)
		}
		if crc32.Checksum(payload, castagnoli) != sum {
			return b, s.skipDamaged(&b, "checksum", nil)
		}
		// The records of a batch share a few large allocations instead
		// of one each.
		if cap(arena)-len(arena) < int(n) {
			arena = make([]byte, 0, max(int(n), arenaChunk))
		}
		at := len(arena)
		arena = append(arena, payload...)
		b.Records = append(b.Records, arena[at:len(arena):len(arena)])
		s.rpos.Offset += headerSize + int64(n)
		b.End = s.rpos
	}
	return b, nil
}

// readAt returns n bytes of the reader's segment at off, from the cache or
// from one read of up to readChunk bytes that stops at end.
func (s *Spool) readAt(off int64, n int, end int64) ([]byte, error) {
	if off >= s.rbufAt && off+int64(n) <= s.rbufAt+int64(len(s.rbuf)) {
		i := off - s.rbufAt
		return s.rbuf[i : i+int64(n)], nil
	}
	want := int64(max(n, readChunk))
	want = min(want, end-off)
	if want < int64(n) {
		return nil, io.ErrUnexpectedEOF
	}
	if int64(cap(s.rbuf)) < want {
		s.rbuf = make([]byte, want)
	}
	s.rbuf = s.rbuf[:want]
	got, err := s.rfile.ReadAt(s.rbuf, off)
	s.rbuf, s.rbufAt = s.rbuf[:got], off
	if got < n {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return s.rbuf[:n], nil
}

// skipDamaged handles a record that cannot be read although it lies before
// the synced end: it logs the damage and moves the reader to the next
// segment, so one bad sector cannot stop the drain for good.
func (s *Spool) skipDamaged(b *Batch, what string, err error) error {
	s.log.Error("spool: damaged record skipped with the rest of its segment",
		slog.String("segment", s.segPath(s.rpos.Segment)), slog.Int64("offset", s.rpos.Offset),
		slog.String("damage", what), slog.Any("error", err))
	if s.rfile != nil {
		s.rfile.Close()
		s.rfile = nil
	}
	s.mu.Lock()
	durable := s.durable
	s.mu.Unlock()
	if s.rpos.Segment < durable.Segment {
		s.rpos = Position{Segment: s.rpos.Segment + 1}
		b.End = s.rpos
	}
	return nil
}

// MarkInflight durably records that the records up to end are being handed
// on, so that Recovered reports them after a crash.
func (s *Spool) MarkInflight(end Position) error {
	s.mu.Lock()
	cp := s.cp
	s.mu.Unlock()
	cp.Inflight = end
	if err := s.writeCheckpoint(cp); err != nil {
		return fmt.Errorf("spool: mark in flight: %w", err)
	}
	s.mu.Lock()
	s.cp = cp
	s.mu.Unlock()
	return nil
}

// Commit durably moves the checkpoint to end: the records before it are
// consumed and never read again. Segments wholly before end are deleted.
func (s *Spool) Commit(end Position) error {
	return s.commit(end, end)
}

// CommitAndMark is Commit(end) followed by MarkInflight(next) in one
// durable write of the checkpoint: a reader that hands on batches one
// after another saves a sync of the checkpoint per batch. The records
// from end to next may have reached their destination after a crash,
// exactly as after MarkInflight.
func (s *Spool) CommitAndMark(end, next Position) error {
	if next.Less(end) {
		return fmt.Errorf("spool: in-flight end %+v is before the commit %+v", next, end)
	}
	return s.commit(end, next)
}

// commit writes the checkpoint {end, inflight} and frees what is before
// end.
func (s *Spool) commit(end, inflight Position) error {
	s.mu.Lock()
	old := s.cp
	sizes := make(map[uint64]int64, len(s.segSizes))
	for k, v := range s.segSizes {
		sizes[k] = v
	}
	s.mu.Unlock()
	if end.Less(old.Committed) {
		return fmt.Errorf("spool: commit %+v is before the checkpoint %+v", end, old.Committed)
	}
	cp := checkpoint{Committed: end, Inflight: inflight}
	if err := s.writeCheckpoint(cp); err != nil {
		return fmt.Errorf("spool: commit: %w", err)
	}
	// Bytes released: the rest of each segment passed, then the part of
	// the new one before end.
	var freed int64
	for seg := old.Committed.Segment; seg < end.Segment; seg++ {
		size, ok := sizes[seg]
		if !ok {
			continue
		}
		if seg == old.Committed.Segment {
			freed += size - old.Committed.Offset
		} else {
			freed += size
		}
	}
	if end.Segment == old.Committed.Segment {
		freed += end.Offset - old.Committed.Offset
	} else {
		freed += end.Offset
	}
	s.used.Add(-freed)

	s.mu.Lock()
	s.cp = cp
	var drop []uint64
	for seg := range s.segSizes {
		if seg < end.Segment {
			drop = append(drop, seg)
			delete(s.segSizes, seg)
		}
	}
	s.mu.Unlock()
	for _, seg := range drop {
		if err := os.Remove(s.segPath(seg)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("spool: delete consumed segment: %w", err)
		}
	}
	return nil
}

// Rewind moves the reader back to the checkpoint, so that the records of a
// batch that could not be handed on are read again.
func (s *Spool) Rewind() {
	if s.rfile != nil {
		s.rfile.Close()
		s.rfile = nil
	}
	s.rbuf = s.rbuf[:0]
	s.mu.Lock()
	s.rpos = s.cp.Committed
	s.mu.Unlock()
}

// Durable returns the end of the records synced so far.
func (s *Spool) Durable() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durable
}

// Committed returns the reader's checkpoint.
func (s *Spool) Committed() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cp.Committed
}

// Pending reports whether records are appended and not yet read by the
// reader.
func (s *Spool) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rpos.Less(s.durable)
}

// Close finishes queued appends, stops the writer and closes the files.
// Reading calls fail with ErrClosed afterwards.
func (s *Spool) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closing)
		<-s.stopped
		s.mu.Lock()
		s.closed = true
		close(s.notify)
		s.notify = make(chan struct{})
		s.mu.Unlock()
		err = s.active.Close()
		if s.rfile != nil {
			s.rfile.Close()
			s.rfile = nil
		}
		// Closing the file releases the flock.
		s.lock.Close()
	})
	return err
}
