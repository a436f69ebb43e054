package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// start listens in a fresh dir and serves h until the test ends.
func start(t *testing.T, h Handler) (dir string) {
	t.Helper()
	dir = shortTempDir(t)
	ln, err := Listen(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ln.Serve(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return dir
}

// shortTempDir is a temporary dir whose path fits a unix socket address;
// t.TempDir's paths grow with the test's name.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func TestCall(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), maxFrame/8) // two frames' worth
	dir := start(t, func(ctx context.Context, s *Session, req Request) int {
		switch req.Args[0] {
		case "echo":
			fmt.Fprint(s.Stdout(), strings.Join(req.Args[1:], " "))
			fmt.Fprintf(s.Stderr(), "terminal=%v", s.Terminal)
			return 0
		case "file":
			f, err := s.Create(req.Args[1])
			if err != nil {
				return 3
			}
			if _, err := f.Write(big); err != nil {
				return 4
			}
			if req.Args[2] == "commit" {
				if err := f.Commit(); err != nil {
					return 5
				}
				return 0
			}
			if req.Args[2] == "abort" {
				f.Abort()
			}
			// "leave": neither; the session aborts it.
			return 1
		case "panic":
			panic("boom")
		}
		return 2
	})
	sock := SocketPath(dir)
	out := t.TempDir()

	tests := []struct {
		name       string
		args       []string
		terminal   bool
		wantCode   int
		wantStdout string
		wantStderr string
		wantFile   string // the file that must exist afterwards, under out
		noFile     string // the file that must not exist afterwards
	}{
		{name: "output and exit code", args: []string{"echo", "a", "b"}, terminal: true, wantStdout: "a b", wantStderr: "terminal=true"},
		{name: "committed file appears whole", args: []string{"file", filepath.Join(out, "a.bin"), "commit"}, wantFile: "a.bin"},
		{name: "aborted file never appears", args: []string{"file", filepath.Join(out, "b.bin"), "abort"}, wantCode: 1, noFile: "b.bin"},
		{name: "file left open is dropped", args: []string{"file", filepath.Join(out, "c.bin"), "leave"}, wantCode: 1, noFile: "c.bin"},
		{name: "a panic is exit 1", args: []string{"panic"}, wantCode: 1, wantStderr: "internal error"},
		{name: "unknown command code passes through", args: []string{"nope"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code, err := Call(context.Background(), sock, Request{Args: tt.args, Terminal: tt.terminal}, &stdout, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want it to hold %q", stderr.String(), tt.wantStderr)
			}
			if tt.wantFile != "" {
				got, err := os.ReadFile(filepath.Join(out, tt.wantFile))
				if err != nil || !bytes.Equal(got, big) {
					t.Errorf("file %s: %v, %d bytes, want %d", tt.wantFile, err, len(got), len(big))
				}
			}
			if tt.noFile != "" {
				if _, err := os.Stat(filepath.Join(out, tt.noFile)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("file %s exists: %v", tt.noFile, err)
				}
			}
			// No temporary file is left beside the outputs.
			if tmp, _ := filepath.Glob(filepath.Join(out, ".*.tmp")); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

// TestCallerGoingAwayStopsTheCommand: an interrupted caller closes its end
// and the command's context ends in the server.
func TestCallerGoingAwayStopsTheCommand(t *testing.T) {
	started, stopped := make(chan struct{}), make(chan struct{})
	dir := start(t, func(ctx context.Context, s *Session, req Request) int {
		close(started)
		<-ctx.Done()
		close(stopped)
		return 1
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Call(ctx, SocketPath(dir), Request{Args: []string{"wait"}}, io.Discard, io.Discard)
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Call after cancel: %v", err)
	}
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("the command went on after its caller left")
	}
}

// TestCallerCannotWriteItsFile: when the caller cannot create the output
// file, the command stops and the caller reports why.
func TestCallerCannotWriteItsFile(t *testing.T) {
	stopped := make(chan struct{})
	dir := start(t, func(ctx context.Context, s *Session, req Request) int {
		defer close(stopped)
		f, err := s.Create(req.Args[0])
		if err != nil {
			return 1
		}
		for ctx.Err() == nil {
			if _, err := f.Write([]byte("data")); err != nil {
				return 1
			}
			time.Sleep(time.Millisecond)
		}
		return 1
	})
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "out.zip")
	_, err := Call(context.Background(), SocketPath(dir), Request{Args: []string{missing}}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Call: %v, want an error naming %s", err, missing)
	}
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("the command went on after its file failed")
	}
}

func TestListen(t *testing.T) {
	t.Run("socket is 0600 and replaces a stale one", func(t *testing.T) {
		dir := shortTempDir(t)
		if err := os.WriteFile(SocketPath(dir), []byte("left by a crash"), 0o644); err != nil {
			t.Fatal(err)
		}
		ln, err := Listen(dir, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(SocketPath(dir))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, want a socket with 0600", fi.Mode())
		}
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(SocketPath(dir)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("socket left after Close: %v", err)
		}
	})
	t.Run("no server", func(t *testing.T) {
		dir := shortTempDir(t)
		_, err := Call(context.Background(), SocketPath(dir), Request{Args: []string{"x"}}, io.Discard, io.Discard)
		if !errors.Is(err, ErrNoServer) {
			t.Fatalf("Call without a server: %v, want ErrNoServer", err)
		}
	})
	t.Run("a socket nobody listens on", func(t *testing.T) {
		dir := shortTempDir(t)
		ln, err := Listen(dir, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		// A crashed server leaves its socket file behind.
		ln.ln.Close()
		_, err = Call(context.Background(), SocketPath(dir), Request{Args: []string{"x"}}, io.Discard, io.Discard)
		if !errors.Is(err, ErrNoServer) {
			t.Fatalf("Call on a dead socket: %v, want ErrNoServer", err)
		}
	})
	t.Run("path too long", func(t *testing.T) {
		dir := filepath.Join(shortTempDir(t), strings.Repeat("d", 100))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := Listen(dir, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "too long") {
			t.Fatalf("Listen with a long path: %v", err)
		}
	})
}
