// Package datadir guards the data dir: one process at a time may own the
// embedded stores in it. The embedded ClickHouse engine corrupts nothing but
// fails obscurely when a second process opens the same path, so Steward takes
// an advisory lock first and names the holder when it cannot.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockFile is the name of the lock file inside the data dir.
const LockFile = "steward.lock"

// ErrInUse is returned when another live process holds the data dir.
var ErrInUse = errors.New("data dir in use")

// Lock is a held lock on a data dir. The kernel releases it when the
// process ends, however it ends, so a crash never leaves a stale lock.
type Lock struct {
	f    *os.File
	path string
}

// Acquire creates dir if needed and takes its lock for the named purpose
// (for example "steward serve"). When another process holds it, the error
// wraps ErrInUse and names that process's pid and purpose.
func Acquire(dir, purpose string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := readHolder(f)
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			abs, _ := filepath.Abs(dir)
			return nil, fmt.Errorf("%w: %s is held by %s; stop that process first, or point STEWARD_DATA_DIR at another folder (the embedded stores allow one process at a time)", ErrInUse, abs, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write lock %s: %w", path, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+purpose+"\n"), 0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write lock %s: %w", path, err)
	}
	return &Lock{f: f, path: path}, nil
}

// Release gives the lock up. The file stays: removing it would race with a
// process that has just opened it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("release lock %s: %w", l.path, err)
	}
	return nil
}

func readHolder(f *os.File) string {
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, 0)
	line := strings.TrimSpace(string(buf[:n]))
	pid, purpose, _ := strings.Cut(line, " ")
	if _, err := strconv.Atoi(pid); err != nil {
		return "another process"
	}
	if purpose == "" {
		purpose = "steward"
	}
	return fmt.Sprintf("pid %s (%s)", pid, purpose)
}
