// Package pgtest provides real PostgreSQL databases for tests: one
// throwaway server per test binary, started on first use from the
// installed server binaries, and a fresh database per test on it.
//
// Use it from TestMain so the server stops when the tests end:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		url := pgtest.NewDatabase(t) // dropped when the test ends
//		...
//	}
//
// The server runs from initdb and postgres found on PATH or in
// /usr/lib/postgresql/<version>/bin (Debian's package postgresql), under a
// temporary folder, on 127.0.0.1 and a free port, with fsync off and trust
// authentication. PostgreSQL refuses to run as root, so as root it runs as
// the user nobody. With STEWARD_TEST_POSTGRES_URL set (a URL whose user may
// create databases), the tests use that server instead.
//
// A binary that skips Main still gets its server stopped: the kernel
// signals postgres when the test process ends. Its folder is then left
// behind and removed by the next test binary that starts a server.
package pgtest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/stewardhq/steward/internal/testutil/localport"
)

// EnvURL names the environment variable that points the tests at an
// existing server instead of a throwaway one.
const EnvURL = "STEWARD_TEST_POSTGRES_URL"

// debianRoot is where Debian installs each PostgreSQL version's binaries,
// in <version>/bin, without putting them on PATH.
const debianRoot = "/usr/lib/postgresql"

// installHint ends every error about a missing server.
const installHint = "install the PostgreSQL server (apt-get install postgresql) or set " + EnvURL + " to a server the tests may create databases on"

// The server is shared by every test of the binary, so it lives in the
// package: one start, however many tests and packages' helpers ask.
var shared struct {
	once sync.Once
	srv  *server
	err  error
}

// Main runs the tests and then stops the server if one was started. Return
// its result from TestMain with os.Exit.
func Main(m *testing.M) int {
	code := m.Run()
	if err := Teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Teardown stops the server if one was started. TestMain functions that
// combine several helpers call it after m.Run instead of using Main.
func Teardown() error {
	if shared.srv == nil {
		return nil
	}
	srv := shared.srv
	shared.srv = nil
	if err := srv.close(); err != nil {
		return fmt.Errorf("stop server: %w", err)
	}
	return nil
}

// NewDatabase creates an empty database with a name unique to this test
// and returns its URL. The database is dropped when the test ends. When
// no server can be had, the test fails and says how to get one.
func NewDatabase(t testing.TB) string {
	t.Helper()
	srv, err := get()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return srv.newDatabase(t)
}

func (s *server) newDatabase(t testing.TB) string {
	t.Helper()
	name := databaseName(t.Name())
	ctx := context.Background() // t.Context is already done when cleanups run
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// FORCE ends connections a test left open.
		if _, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.databaseURL(name)
}

// get starts or finds the server once per process.
func get() (*server, error) {
	shared.once.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			shared.srv, shared.err = external(u)
			return
		}
		shared.srv, shared.err = start(os.Getenv("PATH"), debianRoot)
	})
	return shared.srv, shared.err
}

// databaseName makes a valid, unique database name that still says which
// test it belongs to, for whoever looks at a server mid-run.
func databaseName(testName string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(suffix[:]))
	return b.String()
}

// server is a PostgreSQL server the tests may create databases on.
type server struct {
	base  *url.URL // any database on the server; the path is replaced
	admin *sql.DB  // connected to the database of base
	proc  *process // nil for an external server
}

func (s *server) databaseURL(name string) string {
	u := *s.base
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

func (s *server) close() error {
	err := s.admin.Close()
	if s.proc != nil {
		err = errors.Join(err, s.proc.stop())
	}
	return err
}

// external uses a server someone else runs.
func external(rawURL string) (*server, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s is not a URL", EnvURL)
	}
	admin, err := connect(rawURL)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", EnvURL, err)
	}
	return &server{base: u, admin: admin}, nil
}

func connect(rawURL string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// binaries locates initdb and postgres: on PATH first, then in the newest
// version under root that has both.
func binaries(pathEnv, root string) (initdb, postgres string, err error) {
	onPath := func(name string) string {
		for _, dir := range filepath.SplitList(pathEnv) {
			if dir == "" {
				continue
			}
			if p := filepath.Join(dir, name); isExecutable(p) {
				return p
			}
		}
		return ""
	}
	if initdb, postgres = onPath("initdb"), onPath("postgres"); initdb != "" && postgres != "" {
		return initdb, postgres, nil
	}

	dirs, _ := filepath.Glob(filepath.Join(root, "*", "bin"))
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Compare(version(b), version(a)) })
	for _, dir := range dirs {
		initdb, postgres = filepath.Join(dir, "initdb"), filepath.Join(dir, "postgres")
		if isExecutable(initdb) && isExecutable(postgres) {
			return initdb, postgres, nil
		}
	}
	return "", "", fmt.Errorf("PostgreSQL server binaries initdb and postgres are not on PATH nor in %s/<version>/bin: %s", root, installHint)
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0
}

// process is a running throwaway server.
type process struct {
	dir    string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
}

// dirPrefix starts the name of every server folder in the temp dir; the
// next start removes those whose test binary is gone.
const dirPrefix = "steward-pgtest-"

// nobody is the unprivileged user the server runs as when the tests run
// as root.
const nobody = 65534

// start creates a cluster in a new temporary folder and runs postgres on
// it until stop.
func start(pathEnv, root string) (*server, error) {
	initdb, postgres, err := binaries(pathEnv, root)
	if err != nil {
		return nil, err
	}
	removeStale(os.TempDir())

	dir, err := os.MkdirTemp("", dirPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("create server folder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("create server folder: %w", err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: nobody, Gid: nobody}
		if err := os.Chown(dir, nobody, nobody); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("hand server folder to nobody: %w", err)
		}
	}

	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "--pgdata", data, "--username", "postgres", "--auth", "trust",
		"--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		hint := ""
		if cred != nil {
			hint = fmt.Sprintf(" (it runs as nobody, who must be able to reach %s; set TMPDIR to a folder that allows it)", dir)
		}
		return nil, fmt.Errorf("initdb (%s)%s: %w\n%s", initdb, hint, err, out)
	}

	// The port is found free, closed, then claimed by postgres; another
	// process may take it in between, so a failed bind tries another.
	var lastErr error
	for range 5 {
		port, err := localport.Port()
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		p, err := run(postgres, dir, port, cred)
		if err == nil {
			base, _ := url.Parse(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port))
			admin, err := connect(base.String())
			if err != nil {
				return nil, errors.Join(fmt.Errorf("connect to test server: %w", err), p.stop())
			}
			return &server{base: base, admin: admin, proc: p}, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

var errPortTaken = errors.New("port taken")

// run starts postgres on the cluster in dir and waits until it accepts
// connections.
func run(postgres, dir string, port int, cred *syscall.Credential) (*process, error) {
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create server log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	// Unix socket paths are limited to about 100 bytes; a longer temp dir
	// gets TCP only.
	sockets := dir
	if len(dir)+len("/.s.PGSQL.65535") > 100 {
		sockets = ""
	}
	args := []string{
		"-D", filepath.Join(dir, "data"),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(port),
		"-c", "unix_socket_directories=" + sockets,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		// Each test's pool may hold several connections at once.
		"-c", "max_connections=300",
		"-c", "log_min_messages=warning",
	}
	cmd := exec.Command(postgres, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		// If the test binary dies without stopping the server (a panic, a
		// test timeout, a binary without Main), the kernel stops postgres:
		// SIGQUIT is its immediate shutdown.
		Pdeathsig: syscall.SIGQUIT,
	}
	// The kernel sends Pdeathsig when the thread that started the child
	// ends, not only the process, and Go ends a thread when a goroutine
	// locked to it returns: started from a test locked to its thread,
	// postgres would die with that test. So it is started from a goroutine
	// of its own that stays locked to its thread until postgres has exited.
	p := &process{dir: dir, cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres (%s): %w", postgres, err)
	}

	// The deadline only bounds a server that never comes up; a slow
	// machine is given ample time.
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", port))
	if err != nil {
		return nil, errors.Join(err, p.stop())
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-p.exited:
			log := tail(logPath)
			err := fmt.Errorf("postgres exited while starting:\n%s", log)
			if strings.Contains(log, "could not bind") || strings.Contains(log, "Address already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return nil, err
		default:
		}
		conn, err := pgx.ConnectConfig(context.Background(), cfg)
		if err == nil {
			_ = conn.Close(context.Background())
			return p, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.Join(fmt.Errorf("postgres did not accept connections: %w\n%s", err, tail(logPath)), p.stop())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop shuts the server down and removes its folder.
func (p *process) stop() error {
	// SIGINT is PostgreSQL's fast shutdown: it ends sessions at once.
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	if err := os.RemoveAll(p.dir); err != nil {
		return fmt.Errorf("remove server folder: %w", err)
	}
	return nil
}

// tail returns the end of a log file for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	const keep = 4 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(bytes.TrimSpace(b))
}

// removeStale deletes server folders left in tmp by test binaries that
// ended without stopping their server. A folder is kept while its test
// binary or its postgres still runs, and while it is young enough to be
// still in creation.
func removeStale(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, dirPrefix+"*"))
	for _, dir := range dirs {
		owner, ok := readPID(filepath.Join(dir, "owner"))
		if !ok {
			if info, err := os.Stat(dir); err != nil || time.Since(info.ModTime()) < time.Hour {
				continue
			}
		} else if alive(owner) {
			continue
		}
		if pid, ok := readPID(filepath.Join(dir, "data", "postmaster.pid")); ok && alive(pid) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// readPID reads the number on the first line of a pid file.
func readPID(path string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if !s.Scan() {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s.Text()))
	return pid, err == nil && pid > 0
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
