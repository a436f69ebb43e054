package warehouse

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"unsafe"
)

// connSettings are applied to every embedded connection (as if by SET) so
// that results decode the way clickhouse-go returns them from a server and
// inserted text parses whatever timezone a column has.
var connSettings = []string{
	"--output_format_json_quote_64bit_integers=0",
	"--output_format_json_quote_decimals=0",
	"--date_time_output_format=iso",
	"--date_time_input_format=best_effort",
}

// embedded is the Warehouse over the engine in this process.
//
// The engine runs the statements of one connection one after another (four
// heavy queries on one connection took four times as long as one; on two
// connections, twice), so a Warehouse keeps a small pool of connections: a
// long analytics query then does not hold up ingestion. Each connection has
// its own session, and so its own current database, set once when it opens.
type embedded struct {
	lib      *chdbLib
	database string
	plans    planCache

	pool chan unsafe.Pointer
	size int
	// done is closed once Close has taken every connection back.
	done      chan struct{}
	closeOnce sync.Once
}

func openEmbedded(ctx context.Context, cfg Config) (*embedded, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, errors.New("open embedded warehouse: no data dir configured")
	}
	database := cfg.Database
	if database == "" {
		database = DefaultDatabase
	}
	if err := checkIdent("database", database); err != nil {
		return nil, fmt.Errorf("open embedded warehouse: %w", err)
	}
	dataPath, err := filepath.Abs(filepath.Join(cfg.DataDir, "clickhouse"))
	if err != nil {
		return nil, fmt.Errorf("open embedded warehouse: %w", err)
	}
	lib, err := bootEngine(cfg.LibPath, dataPath)
	if err != nil {
		return nil, fmt.Errorf("open embedded warehouse: %w", err)
	}
	size := min(max(runtime.GOMAXPROCS(0), 2), 8)
	w := &embedded{
		lib:      lib,
		database: database,
		pool:     make(chan unsafe.Pointer, size),
		size:     size,
		done:     make(chan struct{}),
	}
	var conns []unsafe.Pointer
	fail := func(err error) (*embedded, error) {
		for _, c := range conns {
			lib.closeConn(c)
		}
		return nil, fmt.Errorf("open embedded warehouse: %w", err)
	}
	for range size {
		c, err := lib.open(dataPath, connSettings)
		if err != nil {
			return fail(err)
		}
		conns = append(conns, c)
	}
	if err := lib.query(conns[0], []byte("CREATE DATABASE IF NOT EXISTS "+database), "TabSeparated", nil, nil); err != nil {
		return fail(fmt.Errorf("create database %s: %w", database, err))
	}
	for _, c := range conns {
		if err := lib.query(c, []byte("USE "+database), "TabSeparated", nil, nil); err != nil {
			return fail(fmt.Errorf("use database %s: %w", database, err))
		}
	}
	for _, c := range conns {
		w.pool <- c
	}
	return w, nil
}

// run takes a connection for one statement. The engine cannot interrupt a
// statement once started, so ctx is honoured while waiting for a connection
// and before the statement begins, not during it.
func (w *embedded) run(ctx context.Context, query []byte, format string, args []any, read func([]byte) error) error {
	conn, params, err := w.begin(ctx, args)
	if err != nil {
		return err
	}
	defer func() { w.pool <- conn }()
	return w.lib.query(conn, query, format, params, read)
}

// begin turns args into the engine's parameters and takes a connection
// for one statement; the caller puts it back in the pool.
func (w *embedded) begin(ctx context.Context, args []any) (unsafe.Pointer, []param, error) {
	named, err := namedArgs(args)
	if err != nil {
		return nil, nil, err
	}
	params, err := engineParams(named)
	if err != nil {
		return nil, nil, err
	}
	conn, err := w.take(ctx)
	if err != nil {
		return nil, nil, err
	}
	return conn, params, nil
}

// take waits for a free connection; the caller puts it back in the pool.
func (w *embedded) take(ctx context.Context) (unsafe.Pointer, error) {
	var conn unsafe.Pointer
	select {
	case <-w.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	case conn = <-w.pool:
	}
	if err := ctx.Err(); err != nil {
		w.pool <- conn
		return nil, err
	}
	return conn, nil
}

func (w *embedded) Ping(ctx context.Context) error {
	if err := w.run(ctx, []byte("SELECT 1"), "TabSeparated", nil, nil); err != nil {
		return fmt.Errorf("ping embedded warehouse: %w", err)
	}
	return nil
}

func (w *embedded) Exec(ctx context.Context, query string, args ...any) error {
	return w.run(ctx, []byte(query), "TabSeparated", args, nil)
}

func (w *embedded) Select(ctx context.Context, dest any, query string, args ...any) error {
	slice, elem, err := destSlice(dest)
	if err != nil {
		return err
	}
	return w.run(ctx, []byte(query), "JSONEachRow", args, func(data []byte) error {
		return w.plans.decodeRows(data, slice, elem)
	})
}

func (w *embedded) SelectStrings(ctx context.Context, fn func(row [][]byte) error, query string, args ...any) error {
	return w.stream(ctx, query, args, newStringRows(fn).feed)
}

// SelectFormats reads the result once, in RowBinary, and writes each
// format in Go (lines.go). A result holding a column type the Go writer
// does not handle is written by the engine instead; the writer finds out
// from the first chunk's header, before any row is handed over.
func (w *embedded) SelectFormats(ctx context.Context, formats []string, fn func(format int, chunk []byte) error, query string, args ...any) error {
	if err := checkLineFormats(formats); err != nil {
		return err
	}
	lw := newLineWriter(formats, fn)
	err := w.stream(ctx, query, args, lw.feed)
	if errors.Is(err, errUnwritten) && lw.header == nil {
		return selectFormatsByEngine(ctx, w.SelectStrings, formats, fn, query, args...)
	}
	return err
}

// stream runs a query on a connection of the pool as a stream of
// RowBinaryWithNamesAndTypes chunks.
func (w *embedded) stream(ctx context.Context, query string, args []any, read func([]byte) error) error {
	conn, params, err := w.begin(ctx, args)
	if err != nil {
		return err
	}
	defer func() { w.pool <- conn }()
	return w.lib.stream(ctx, conn, []byte(query), "RowBinaryWithNamesAndTypes", params, read)
}

func (w *embedded) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	head, err := insertHead(table, columns)
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	if len(rows) == 0 {
		return nil
	}
	// About 20 bytes per value is a fair first guess for event rows and
	// saves most of the buffer's regrowth.
	buf := make([]byte, 0, len(head)+32+len(rows)*len(columns)*20)
	buf = append(buf, head...)
	buf = append(buf, " FORMAT TabSeparated\n"...)
	for i, row := range rows {
		if len(row) != len(columns) {
			return fmt.Errorf("insert into %s: row %d has %d values for %d columns", table, i, len(row), len(columns))
		}
		if buf, err = appendTSVRow(buf, row); err != nil {
			return fmt.Errorf("insert into %s: row %d: %w", table, i, err)
		}
	}
	if err := w.run(ctx, buf, "TabSeparated", nil, nil); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}

// InsertTSV runs one insert of rows given as TabSeparated text.
func (w *embedded) InsertTSV(ctx context.Context, table string, columns []string, rows []byte) error {
	head, err := insertHead(table, columns)
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	if len(rows) == 0 {
		return nil
	}
	if rows[len(rows)-1] != '\n' {
		return fmt.Errorf("insert into %s: the rows do not end with a line break", table)
	}
	const format = " FORMAT TabSeparated\n"
	buf := make([]byte, 0, len(head)+len(format)+len(rows))
	buf = append(buf, head...)
	buf = append(buf, format...)
	buf = append(buf, rows...)
	if err := w.run(ctx, buf, "TabSeparated", nil, nil); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}

func (w *embedded) Backend() string  { return BackendEmbedded }
func (w *embedded) Database() string { return w.database }

// Close waits for running statements to finish and closes the connections.
// The engine itself keeps running for the rest of the process.
func (w *embedded) Close() error {
	w.closeOnce.Do(func() {
		for range w.size {
			c := <-w.pool
			w.lib.closeConn(c)
		}
		close(w.done)
	})
	return nil
}

var (
	_ Warehouse    = (*embedded)(nil)
	_ TextInserter = (*embedded)(nil)
)
