package spool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/analytics/spool"
)

func open(t *testing.T, dir string, opts spool.Options) *spool.Spool {
	t.Helper()
	s, err := spool.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rec(i int) []byte { return []byte(fmt.Sprintf("record-%05d", i)) }

// filled opens a spool in dir and appends rec(0) to rec(n-1). It leaves
// closing to the test, which closes it to stand for a stop or a crash
// before opening dir again.
func filled(t *testing.T, dir string, opts spool.Options, n int) *spool.Spool {
	t.Helper()
	s, err := spool.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := s.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// firstSegment is the path of the oldest segment file in dir.
func firstSegment(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no segment in %s: %v", dir, err)
	}
	return m[0]
}

// readAll reads every available record, committing as it goes when commit
// is set.
func readAll(t *testing.T, s *spool.Spool, commit bool) []string {
	t.Helper()
	var out []string
	for {
		b, err := s.Next(context.Background(), 7, 20*time.Millisecond, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Records {
			out = append(out, string(r))
		}
		if commit && b.End != b.Start {
			if err := s.Commit(b.End); err != nil {
				t.Fatal(err)
			}
		}
		if len(b.Records) == 0 && !s.Pending() {
			return out
		}
	}
}

func segments(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestOrderAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := filled(t, dir, spool.Options{SegmentBytes: 200}, 100)
	if n := segments(t, dir); n < 5 {
		t.Fatalf("%d segments for 100 records of 200-byte segments", n)
	}
	// Read 30 and commit them; read 20 more without committing.
	b, err := s.Next(ctx, 30, time.Second, nil)
	if err != nil || len(b.Records) != 30 {
		t.Fatalf("first read: %d records, %v", len(b.Records), err)
	}
	if err := s.Commit(b.End); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(ctx, 20, time.Second, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// After a restart the reader resumes at the commit, not where it read.
	s = open(t, dir, spool.Options{SegmentBytes: 200})
	got := readAll(t, s, true)
	if len(got) != 70 || got[0] != string(rec(30)) || got[69] != string(rec(99)) {
		t.Fatalf("after reopen read %d records, %q..%q", len(got), got[0], got[len(got)-1])
	}
	if n := segments(t, dir); n != 1 {
		t.Fatalf("%d segments left after committing everything, want the active one", n)
	}
	if s.Used() != 0 {
		t.Fatalf("Used() = %d after committing everything", s.Used())
	}
}

func TestTornTailTruncated(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	filled(t, dir, spool.Options{}, 10).Close()
	// A crash in the middle of a write leaves part of a frame: a length
	// promising more bytes than follow.
	f, err := os.OpenFile(firstSegment(t, dir), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 'p', 'a', 'r'}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s := open(t, dir, spool.Options{})
	if err := s.Append(ctx, []byte("after-crash")); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s, true)
	if len(got) != 11 || got[9] != string(rec(9)) || got[10] != "after-crash" {
		t.Fatalf("read %q", got)
	}
}

func TestCorruptRecordNotReturned(t *testing.T) {
	dir := t.TempDir()
	filled(t, dir, spool.Options{}, 3).Close()
	seg := firstSegment(t, dir)
	raw, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte of the last record's payload: its checksum fails.
	raw[len(raw)-1] ^= 0xff
	if err := os.WriteFile(seg, raw, 0o640); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, spool.Options{})
	got := readAll(t, s, false)
	if len(got) != 2 {
		t.Fatalf("read %q, want the two intact records", got)
	}
}

func TestFullSpoolRefusesThenRecovers(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), spool.Options{MaxBytes: 100})
	for i := range 5 {
		if err := s.Append(ctx, rec(i)); err != nil { // 8 + 12 bytes each
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if err := s.Append(ctx, rec(5)); !errors.Is(err, spool.ErrFull) {
		t.Fatalf("append past MaxBytes: %v, want ErrFull", err)
	}
	b, err := s.Next(ctx, 2, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(b.End); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, rec(5)); err != nil {
		t.Fatalf("append after the drain freed space: %v", err)
	}
}

func TestRecoveredInflight(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := filled(t, dir, spool.Options{}, 10)
	b, err := s.Next(ctx, 4, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkInflight(b.End); err != nil {
		t.Fatal(err)
	}
	// The process dies here, before Commit.
	s.Close()

	s = open(t, dir, spool.Options{})
	start, end, ok := s.Recovered()
	if !ok || start != b.Start || end != b.End {
		t.Fatalf("Recovered() = %+v %+v %v, want %+v %+v true", start, end, ok, b.Start, b.End)
	}
	again, err := s.Next(ctx, 100, time.Second, &end)
	if err != nil || len(again.Records) != 4 || string(again.Records[0]) != string(rec(0)) {
		t.Fatalf("re-read of the in-flight batch: %d records, %v", len(again.Records), err)
	}
	if err := s.Commit(again.End); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.Recovered(); ok {
		t.Fatal("still recovering after the commit")
	}
}

// TestCommitAndMark commits one batch and marks the next in flight in
// one write; after a crash the next batch is the one to check.
func TestCommitAndMark(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := filled(t, dir, spool.Options{}, 10)
	first, err := s.Next(ctx, 4, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkInflight(first.End); err != nil {
		t.Fatal(err)
	}
	second, err := s.Next(ctx, 3, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CommitAndMark(second.End, first.End); err == nil {
		t.Fatal("an in-flight end before the commit was accepted")
	}
	if err := s.CommitAndMark(first.End, second.End); err != nil {
		t.Fatal(err)
	}
	if s.Used() != 6*int64(len(rec(0))+8) {
		t.Fatalf("%d bytes in use after committing 4 of 10 records", s.Used())
	}
	// The process dies here, before the second batch is committed.
	s.Close()

	s = open(t, dir, spool.Options{})
	start, end, ok := s.Recovered()
	if !ok || start != second.Start || end != second.End {
		t.Fatalf("Recovered() = %+v %+v %v, want %+v %+v true", start, end, ok, second.Start, second.End)
	}
	again, err := s.Next(ctx, 100, time.Second, &end)
	if err != nil || len(again.Records) != 3 || string(again.Records[0]) != string(rec(4)) {
		t.Fatalf("re-read of the in-flight batch: %d records, %v", len(again.Records), err)
	}
}

// TestGroupCommit shows concurrent appends sharing fsyncs, and every one of
// them durable when Append returns.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 32, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.Append(ctx, rec(w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	appends, syncs := s.Stats()
	if appends != writers*each {
		t.Fatalf("%d appends written, want %d", appends, writers*each)
	}
	if syncs >= appends/2 {
		t.Fatalf("%d fsyncs for %d concurrent appends: group commit is not sharing them", syncs, appends)
	}
	s.Close()
	s = open(t, dir, spool.Options{})
	if got := readAll(t, s, false); len(got) != writers*each {
		t.Fatalf("read %d records after reopen, want %d", len(got), writers*each)
	}
}

func TestAppendAfterClose(t *testing.T) {
	s, err := spool.Open(t.TempDir(), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Append(context.Background(), rec(1)); !errors.Is(err, spool.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, spool.Options{})
	if _, err := spool.Open(dir, spool.Options{}); !errors.Is(err, spool.ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	s.Close()
	again, err := spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}
