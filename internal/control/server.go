package control

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSocketPath is the longest path a unix socket address holds
// (sun_path is 108 bytes with its terminating NUL).
const maxSocketPath = 107

// Handler runs one request and returns its exit code. It writes through
// the session; ctx ends when the caller goes away or the server stops.
type Handler func(ctx context.Context, s *Session, req Request) int

// Listener accepts the local operator's commands.
type Listener struct {
	ln   *net.UnixListener
	path string
	log  *slog.Logger
	uid  int

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Listen opens the socket in dir. The caller holds the data dir's lock,
// so a socket file already there was left by a process that ended, and is
// replaced. The socket is bound under a temporary name, made 0600 and only
// then renamed into place: nobody else ever sees it with wider rights.
func Listen(dir string, log *slog.Logger) (*Listener, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	path := filepath.Join(abs, SocketName)
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	tmp := filepath.Join(abs, "."+SocketName+"-"+hex.EncodeToString(suffix[:]))
	if len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("control socket: the data dir path %s is too long for a unix socket (at most %d bytes with the socket name); use a shorter STEWARD_DATA_DIR", abs, maxSocketPath)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The file is renamed below; Close removes it by its final name.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Listener, error) {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return &Listener{ln: ln, path: path, log: log, uid: os.Getuid()}, nil
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Serve accepts connections until ctx ends or Close is called, running
// each request with h in its own goroutine. Commands get a context that
// ends with ctx. It returns after every running command has returned.
func (l *Listener) Serve(ctx context.Context, h Handler) error {
	stop := context.AfterFunc(ctx, func() { _ = l.Close() })
	defer stop()
	defer l.wg.Wait()
	for {
		conn, err := l.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("control socket: accept: %w", err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.handle(ctx, conn, h)
		}()
	}
}

// Close stops accepting and removes the socket. Running commands go on
// until their context ends; Serve waits for them.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		err = l.ln.Close()
		if rmErr := os.Remove(l.path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = errors.Join(err, rmErr)
		}
	})
	return err
}

func (l *Listener) handle(ctx context.Context, conn *net.UnixConn, h Handler) {
	defer conn.Close()
	if err := l.checkPeer(conn); err != nil {
		l.log.Warn("control connection refused", slog.Any("error", err))
		return
	}
	kind, payload, err := readFrame(conn)
	if err != nil || kind != kindRequest {
		l.log.Warn("control connection without a request", slog.Any("error", err))
		return
	}
	var req Request
	if err := json.Unmarshal(payload, &req); err != nil {
		l.log.Warn("control request unreadable", slog.Any("error", err))
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The caller sends nothing after its request: anything read, or the
	// end of its side, means it went away (an interrupt, a closed
	// terminal), and the command stops.
	go func() {
		_, _ = conn.Read(make([]byte, 1))
		cancel()
	}()
	s := &Session{conn: conn, Terminal: req.Terminal}
	code := l.run(ctx, s, req, h)
	s.abortOpen()
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(code))
	_ = s.send(kindExit, p[:])
}

// run calls h, turning a panic into exit code 1 so that one bad command
// cannot take the server down.
func (l *Listener) run(ctx context.Context, s *Session, req Request, h Handler) (code int) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("control command panicked", slog.Any("panic", r))
			fmt.Fprintln(s.Stderr(), "steward: internal error while running the command; see the server log")
			code = 1
		}
	}()
	return h(ctx, s, req)
}

// checkPeer lets in the server's own user and root.
func (l *Listener) checkPeer(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("peer credentials: %w", credErr)
	}
	if int(cred.Uid) != l.uid && cred.Uid != 0 {
		return fmt.Errorf("peer uid %d is not the server's uid %d", cred.Uid, l.uid)
	}
	return nil
}

// Session is one running command's side of the connection.
type Session struct {
	// Terminal reports whether the caller's stderr is a terminal.
	Terminal bool

	mu     sync.Mutex
	conn   net.Conn
	nextID uint32
	open   map[uint32]bool
}

func (s *Session) send(kind byte, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return writeFrame(s.conn, kind, payload)
}

// Stdout is the caller's standard output.
func (s *Session) Stdout() io.Writer { return streamWriter{s: s, kind: kindStdout} }

// Stderr is the caller's standard error.
func (s *Session) Stderr() io.Writer { return streamWriter{s: s, kind: kindStderr} }

type streamWriter struct {
	s    *Session
	kind byte
}

func (w streamWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFrame)]
		if err := w.s.send(w.kind, chunk); err != nil {
			return n, fmt.Errorf("write to the caller: %w", err)
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// Create opens an output file on the caller's side, path resolved against
// the caller's working directory. Like a local File it appears under its
// name only on Commit.
func (s *Session) Create(path string) (File, error) {
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	if s.open == nil {
		s.open = map[uint32]bool{}
	}
	s.open[id] = true
	s.mu.Unlock()
	p, err := json.Marshal(fileOpen{ID: id, Path: path})
	if err != nil {
		return nil, err
	}
	if err := s.send(kindFileOpen, p); err != nil {
		return nil, fmt.Errorf("create %s on the caller's side: %w", path, err)
	}
	return &remoteFile{s: s, id: id, path: path}, nil
}

// abortOpen aborts the files the command left neither committed nor
// aborted.
func (s *Session) abortOpen() {
	s.mu.Lock()
	var ids []uint32
	for id := range s.open {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		_ = s.send(kindFileAbort, idPayload(id, nil))
	}
}

func (s *Session) done(id uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open[id] {
		return false
	}
	delete(s.open, id)
	return true
}

type remoteFile struct {
	s    *Session
	id   uint32
	path string
}

func (f *remoteFile) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFrame)]
		if err := f.s.send(kindFileWrite, idPayload(f.id, chunk)); err != nil {
			return n, fmt.Errorf("write %s on the caller's side: %w", f.path, err)
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

func (f *remoteFile) Commit() error {
	if !f.s.done(f.id) {
		return nil
	}
	if err := f.s.send(kindFileCommit, idPayload(f.id, nil)); err != nil {
		return fmt.Errorf("finish %s on the caller's side: %w", f.path, err)
	}
	return nil
}

func (f *remoteFile) Abort() {
	if f.s.done(f.id) {
		_ = f.s.send(kindFileAbort, idPayload(f.id, nil))
	}
}
