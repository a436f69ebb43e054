package control

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is an output file that appears under its name only when complete:
// a command that fails half-way leaves no truncated file behind, and an
// earlier file of the same name stays as it was.
type File interface {
	io.Writer
	// Commit finishes the file and moves it into place.
	Commit() error
	// Abort drops what was written; after Commit it does nothing.
	Abort()
}

// CreateFile opens path as a File on this machine: the bytes go to a
// temporary file beside it, renamed over path on Commit.
func CreateFile(path string) (File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &localFile{f: tmp, path: path}, nil
}

type localFile struct {
	f    *os.File
	path string
	done bool
}

func (l *localFile) Write(p []byte) (int, error) {
	n, err := l.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", l.path, err)
	}
	return n, nil
}

func (l *localFile) Commit() error {
	if l.done {
		return nil
	}
	l.done = true
	// The file keeps CreateTemp's mode 0600: packages and reports hold
	// personal data, and the operator shares them on purpose, not by umask.
	err := errors.Join(l.f.Sync(), l.f.Close())
	if err == nil {
		err = os.Rename(l.f.Name(), l.path)
	}
	if err != nil {
		_ = os.Remove(l.f.Name())
		return fmt.Errorf("write %s: %w", l.path, err)
	}
	return nil
}

func (l *localFile) Abort() {
	if l.done {
		return
	}
	l.done = true
	_ = l.f.Close()
	_ = os.Remove(l.f.Name())
}
