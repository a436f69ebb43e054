package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/ebitengine/purego"
)

// chdbLib holds the C entry points of libchdb.so that the embedded backend
// calls. The declarations follow chdb.h of chDB 26.7: chdb_connection is an
// opaque pointer and chdb_connect returns a pointer to one; results are
// opaque chdb_result pointers freed with chdb_destroy_query_result.
type chdbLib struct {
	path string

	setSignalHandlersEnabled func(enabled int32)
	connect                  func(argc int32, argv []*byte) unsafe.Pointer
	closeConn                func(connp unsafe.Pointer)
	queryN                   func(conn unsafe.Pointer, query []byte, queryLen uintptr, format string, formatLen uintptr) unsafe.Pointer
	queryWithParamsN         func(conn unsafe.Pointer, query []byte, queryLen uintptr, format string, formatLen uintptr,
		names []*byte, nameLens []uintptr, values []*byte, valueLens []uintptr, count uintptr) unsafe.Pointer
	streamQueryWithParamsN func(conn unsafe.Pointer, query []byte, queryLen uintptr, format string, formatLen uintptr,
		names []*byte, nameLens []uintptr, values []*byte, valueLens []uintptr, count uintptr) unsafe.Pointer
	streamFetchResult func(conn unsafe.Pointer, result unsafe.Pointer) unsafe.Pointer
	streamCancelQuery func(conn unsafe.Pointer, result unsafe.Pointer)
	shutdown          func() int32
	resultBuffer      func(result unsafe.Pointer) unsafe.Pointer
	resultLength      func(result unsafe.Pointer) uintptr
	resultError       func(result unsafe.Pointer) string
	destroyResult     func(result unsafe.Pointer)
}

// engineState is the one embedded engine of the process. It is package state
// because what it mirrors is process-wide: the 566 MB library is mapped once,
// and ClickHouse boots one server per process on one data directory (a
// second directory fails even after the first connection closes). base is a
// connection held for the life of the process so that closing the last
// Warehouse does not shut the engine down and boot it again on the next Open,
// which chDB documents as unsafe to repeat.
type engineState struct {
	mu       sync.Mutex
	lib      *chdbLib
	dataPath string
	base     unsafe.Pointer
	// migrating holds the databases a migration runs on (see
	// embeddedDriver.Lock).
	migrating map[string]bool
	// stopped is set by ShutdownEngine; the engine cannot start again.
	stopped bool
}

var engine engineState

// bootEngine loads the library (once) and starts the engine on dataPath
// (once), returning the library to open connections with.
func bootEngine(libPath, dataPath string) (*chdbLib, error) {
	engine.mu.Lock()
	defer engine.mu.Unlock()

	abs, err := findLib(libPath)
	if err != nil {
		return nil, err
	}
	if engine.lib != nil && engine.lib.path != abs {
		return nil, fmt.Errorf("embedded engine already loaded from %s, cannot also load %s", engine.lib.path, abs)
	}
	if engine.stopped {
		return nil, errors.New("embedded engine was shut down and cannot start again in this process")
	}
	if engine.base != nil {
		if engine.dataPath != dataPath {
			return nil, fmt.Errorf("embedded engine already runs on %s in this process and cannot also open %s: one data directory per process", engine.dataPath, dataPath)
		}
		return engine.lib, nil
	}
	if err := os.MkdirAll(dataPath, 0o750); err != nil {
		return nil, fmt.Errorf("create engine data dir: %w", err)
	}
	// ClickHouse refuses a directory another process runs on, but it says so
	// only on its own stderr; checking its lock first gives the caller an
	// error that names the directory and the other process, without loading
	// the library for nothing.
	if err := checkDirLock(dataPath); err != nil {
		return nil, err
	}
	lib, err := loadLibLocked(abs)
	if err != nil {
		return nil, err
	}
	base, err := lib.open(dataPath, nil)
	if err != nil {
		if lockErr := checkDirLock(dataPath); lockErr != nil {
			return nil, lockErr
		}
		return nil, err
	}
	engine.base = base
	engine.dataPath = dataPath
	return lib, nil
}

// findLib returns the absolute path of the library, or ErrEngineMissing.
func findLib(libPath string) (string, error) {
	if libPath == "" {
		return "", fmt.Errorf("%w: no library path configured (STEWARD_CHDB_LIB); `make chdb` fetches it", ErrEngineMissing)
	}
	abs, err := filepath.Abs(libPath)
	if err != nil {
		return "", fmt.Errorf("library path %s: %w", libPath, err)
	}
	if _, err := os.Stat(abs); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: %s does not exist; `make chdb` fetches it", ErrEngineMissing, abs)
		}
		return "", fmt.Errorf("%w: %s: %v", ErrEngineMissing, abs, err)
	}
	return abs, nil
}

// loadLibLocked maps the library at abs and resolves its entry points, once
// per process.
func loadLibLocked(abs string) (*chdbLib, error) {
	if engine.lib != nil {
		return engine.lib, nil
	}
	handle, err := purego.Dlopen(abs, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s cannot be loaded (%w); it must be the libchdb.so of %s, which `make chdb` fetches", ErrEngineMissing, abs, err, "@chdb/lib-linux-x64-gnu")
	}
	lib := &chdbLib{path: abs}
	syms := []struct {
		fptr any
		name string
	}{
		{&lib.setSignalHandlersEnabled, "chdb_set_signal_handlers_enabled"},
		{&lib.connect, "chdb_connect"},
		{&lib.closeConn, "chdb_close_conn"},
		{&lib.queryN, "chdb_query_n"},
		{&lib.queryWithParamsN, "chdb_query_with_params_n"},
		{&lib.streamQueryWithParamsN, "chdb_stream_query_with_params_n"},
		{&lib.streamFetchResult, "chdb_stream_fetch_result"},
		{&lib.streamCancelQuery, "chdb_stream_cancel_query"},
		{&lib.resultBuffer, "chdb_result_buffer"},
		{&lib.resultLength, "chdb_result_length"},
		{&lib.resultError, "chdb_result_error"},
		{&lib.destroyResult, "chdb_destroy_query_result"},
		{&lib.shutdown, "chdb_shutdown"},
	}
	for _, s := range syms {
		sym, err := purego.Dlsym(handle, s.name)
		if err != nil {
			return nil, fmt.Errorf("embedded engine %s lacks %s (expected chDB 26.7): %w", abs, s.name, err)
		}
		purego.RegisterFunc(s.fptr, sym)
	}
	// ClickHouse installs handlers for SIGSEGV and friends unless told not
	// to; they would take over the Go runtime's own, and a nil dereference
	// that Go turns into a recoverable panic would kill the process instead.
	// The flag is process-wide and must be set before the first connect.
	lib.setSignalHandlersEnabled(0)
	engine.lib = lib
	return lib, nil
}

// ShutdownEngine stops the process's embedded engine, if one runs, and
// joins its threads. Call it at the very end of a process, after closing
// every embedded Warehouse, when something must run after the engine's work
// has stopped, such as the race detector's exit checks (they crash while the
// engine is still running). The engine cannot start again in the same
// process.
func ShutdownEngine() error {
	engine.mu.Lock()
	defer engine.mu.Unlock()
	if engine.base == nil || engine.stopped {
		return nil
	}
	engine.lib.closeConn(engine.base)
	engine.base = nil
	engine.stopped = true
	// chDB returns an error when a connection is still open or when some of
	// its threads did not stop; it does the latter whenever a MergeTree table
	// exists (seen with 26.7), and the engine is stopped for business either
	// way.
	if engine.lib.shutdown() != 0 {
		return errors.New("shut down embedded engine: an open connection or a background thread kept it from stopping completely")
	}
	return nil
}

// checkDirLock reports ErrEngineInUse when another process holds the lock
// ClickHouse takes on dataPath/status (flock, exclusive).
func checkDirLock(dataPath string) error {
	statusPath := filepath.Join(dataPath, "status")
	f, err := os.Open(statusPath)
	if err != nil {
		// No status file: no engine has ever run here.
		return nil
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return nil
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return nil
	}
	holder := "another process"
	if b, err := os.ReadFile(statusPath); err == nil {
		for line := range strings.Lines(string(b)) {
			if pid, ok := strings.CutPrefix(line, "PID:"); ok {
				holder = "process " + strings.TrimSpace(pid)
			}
		}
	}
	return fmt.Errorf("%w: %s is held by %s; stop it or use another data dir", ErrEngineInUse, dataPath, holder)
}

// open connects to the engine on dataPath; settings are ClickHouse
// query-level settings (name=value) that apply to this connection only.
func (l *chdbLib) open(dataPath string, settings []string) (unsafe.Pointer, error) {
	args := append([]string{"clickhouse", "--path=" + dataPath}, settings...)
	argv := make([]*byte, len(args))
	bufs := make([][]byte, len(args))
	for i, a := range args {
		bufs[i] = append([]byte(a), 0)
		argv[i] = &bufs[i][0]
	}
	connp := l.connect(int32(len(argv)), argv)
	if connp == nil {
		return nil, fmt.Errorf("embedded engine failed to start on %s (its reason is on stderr)", dataPath)
	}
	return connp, nil
}

// errNoResult is a statement the engine answered with no result at all.
var errNoResult = errors.New("embedded engine returned no result")

// engineError is the error a result or a chunk of one carries, if any.
func (l *chdbLib) engineError(res unsafe.Pointer) error {
	if msg := l.resultError(res); msg != "" {
		return &EngineError{Message: strings.TrimSpace(msg)}
	}
	return nil
}

// opened checks that a statement began: the engine gave a result and no
// error. A result with an error is freed; the caller frees one without.
func (l *chdbLib) opened(res unsafe.Pointer) error {
	if res == nil {
		return errNoResult
	}
	if err := l.engineError(res); err != nil {
		l.destroyResult(res)
		return err
	}
	return nil
}

// query runs one statement on the connection behind connp and hands the
// result bytes to read before they are freed. read must copy what it keeps.
func (l *chdbLib) query(connp unsafe.Pointer, q []byte, format string, params []param, read func([]byte) error) error {
	conn := *(*unsafe.Pointer)(connp)
	if len(q) == 0 {
		return errors.New("empty query")
	}
	var res unsafe.Pointer
	if len(params) == 0 {
		res = l.queryN(conn, q, uintptr(len(q)), format, uintptr(len(format)))
	} else {
		a := newParamArrays(params)
		res = l.queryWithParamsN(conn, q, uintptr(len(q)), format, uintptr(len(format)),
			a.names, a.nameLens, a.values, a.valueLens, uintptr(len(params)))
	}
	if err := l.opened(res); err != nil {
		return err
	}
	defer l.destroyResult(res)
	if read == nil {
		return nil
	}
	n := l.resultLength(res)
	buf := l.resultBuffer(res)
	if n == 0 || buf == nil {
		return read(nil)
	}
	return read(unsafe.Slice((*byte)(buf), n))
}

// stream runs one statement on the connection behind connp as a streaming
// query and hands each chunk of its result (the formatted output of one
// block or more) to read before the chunk is freed; read must copy what
// it keeps. The engine formats the next chunk while read works on one
// (fetchAhead), so at most two chunks are held and memory does not grow
// with the result. ctx is checked between chunks: a cancelled context
// cancels the rest of the query.
func (l *chdbLib) stream(ctx context.Context, connp unsafe.Pointer, q []byte, format string, params []param, read func([]byte) error) error {
	conn := *(*unsafe.Pointer)(connp)
	if len(q) == 0 {
		return errors.New("empty query")
	}
	a := newParamArrays(params)
	res := l.streamQueryWithParamsN(conn, q, uintptr(len(q)), format, uintptr(len(format)),
		a.names, a.nameLens, a.values, a.valueLens, uintptr(len(params)))
	if err := l.opened(res); err != nil {
		return err
	}
	defer l.destroyResult(res)
	f := l.fetchAhead(ctx, conn, res)
	for c := range f.chunks {
		if c.err != nil {
			return c.err
		}
		err := read(unsafe.Slice((*byte)(c.buf), c.n))
		l.destroyResult(c.res)
		if err != nil {
			f.cancel()
			return err
		}
	}
	return nil
}

// fetched is one chunk of a streaming result: its bytes, or the error
// that ended the stream. A stream that ends without error closes the
// channel after its last chunk.
type fetched struct {
	res, buf unsafe.Pointer
	n        int
	err      error
}

// fetcher fetches the chunks of a streaming result on a goroutine of its
// own, one ahead of the reader.
type fetcher struct {
	l      *chdbLib
	conn   unsafe.Pointer
	res    unsafe.Pointer
	chunks chan fetched
	stop   chan struct{}
}

// fetchAhead starts fetching the chunks of res. The reader takes them
// from chunks and frees each with destroyResult; a reader that stops
// early calls cancel. The fetcher checks ctx before each chunk and, once
// it is cancelled, cancels the query and ends the stream with ctx's
// error.
func (l *chdbLib) fetchAhead(ctx context.Context, conn, res unsafe.Pointer) *fetcher {
	f := &fetcher{l: l, conn: conn, res: res, chunks: make(chan fetched, 1), stop: make(chan struct{})}
	go f.run(ctx)
	return f
}

func (f *fetcher) run(ctx context.Context) {
	defer close(f.chunks)
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		if err := ctx.Err(); err != nil {
			f.l.streamCancelQuery(f.conn, f.res)
			f.chunks <- fetched{err: err}
			return
		}
		chunk := f.l.streamFetchResult(f.conn, f.res)
		if chunk == nil {
			f.l.streamCancelQuery(f.conn, f.res)
			f.chunks <- fetched{err: errors.New("embedded engine returned no result chunk")}
			return
		}
		if err := f.l.engineError(chunk); err != nil {
			f.l.destroyResult(chunk)
			f.chunks <- fetched{err: err}
			return
		}
		// chdb.h: an empty chunk ends the stream.
		n, buf := f.l.resultLength(chunk), f.l.resultBuffer(chunk)
		if n == 0 || buf == nil {
			f.l.destroyResult(chunk)
			return
		}
		select {
		case f.chunks <- fetched{res: chunk, buf: buf, n: int(n)}:
		case <-f.stop:
			f.l.destroyResult(chunk)
			return
		}
	}
}

// cancel stops the fetcher, frees the chunks it fetched that no one
// read, and cancels the rest of the query. It returns once the fetcher
// is done with the result.
func (f *fetcher) cancel() {
	close(f.stop)
	for c := range f.chunks {
		if c.res != nil {
			f.l.destroyResult(c.res)
		}
	}
	f.l.streamCancelQuery(f.conn, f.res)
}

// paramArrays are a statement's parameters as the C arrays libchdb takes.
type paramArrays struct {
	names, values       []*byte
	nameLens, valueLens []uintptr
}

func newParamArrays(params []param) paramArrays {
	a := paramArrays{
		names: make([]*byte, len(params)), nameLens: make([]uintptr, len(params)),
		values: make([]*byte, len(params)), valueLens: make([]uintptr, len(params)),
	}
	for i, p := range params {
		// A trailing NUL keeps every pointer valid for an empty value.
		n := append([]byte(p.name), 0)
		v := append([]byte(p.value), 0)
		a.names[i], a.nameLens[i] = &n[0], uintptr(len(p.name))
		a.values[i], a.valueLens[i] = &v[0], uintptr(len(p.value))
	}
	return a
}

// EngineError is an error reported by the embedded ClickHouse engine; Message
// is ClickHouse's own text ("Code: 62. DB::Exception: Syntax error ...").
type EngineError struct {
	Message string
}

func (e *EngineError) Error() string { return "clickhouse: " + e.Message }

// param is one {name:Type} value in ClickHouse's escaped text form.
type param struct {
	name, value string
}
