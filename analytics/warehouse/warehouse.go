// Package warehouse provides the analytics warehouse: one small interface over
// two ClickHouse backends, the engine embedded in the process (chDB's
// libchdb.so, the default) and a ClickHouse server reached through
// clickhouse-go's native protocol. Both run the same DDL and the same queries,
// take query parameters in ClickHouse's own {name:Type} syntax and decode
// results into structs tagged `ch:"column"`.
package warehouse

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultDatabase is the database used when Config names none.
const DefaultDatabase = "steward"

// Backend names returned by Warehouse.Backend.
const (
	BackendEmbedded = "embedded"
	BackendServer   = "server"
)

var (
	// ErrEngineMissing means the embedded engine's shared library is not at
	// the configured path.
	ErrEngineMissing = errors.New("embedded ClickHouse engine library missing")
	// ErrEngineInUse means another process runs the embedded engine on the
	// same data directory; ClickHouse allows one per directory.
	ErrEngineInUse = errors.New("embedded ClickHouse data directory in use by another process")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("warehouse closed")
	// ErrNoVersion is returned by MigrationVersion when no migration has been
	// applied yet.
	ErrNoVersion = errors.New("no warehouse migration applied")
)

// Config selects and configures a backend.
type Config struct {
	// URL is empty for the embedded engine; otherwise a ClickHouse server
	// reached over the native protocol, clickhouse://user:pass@host:9000/db.
	URL string
	// DataDir is where the embedded engine keeps its data, in
	// DataDir/clickhouse.
	DataDir string
	// LibPath is the path of libchdb.so for the embedded engine.
	LibPath string
	// Database is the database to use, created when missing; DefaultDatabase
	// when empty. A database in the server URL's path takes precedence.
	Database string
}

// Warehouse is the analytics store. Every method is safe for concurrent use.
//
// Queries take parameters as ClickHouse placeholders, {name:Type}, with values
// given by Named; values never become part of the SQL text. Select decodes
// into dest, a *[]T where T is a struct whose fields carry `ch:"column"` tags
// (clickhouse-go's convention); a result column without a field is an error.
// Use the Go type clickhouse-go scans the column into (uint64 for count(),
// time.Time for DateTime64, *string for Nullable(String),
// decimal.Decimal for Decimal) so that a query behaves the same on both
// backends.
type Warehouse interface {
	// Ping checks that the backend answers a query.
	Ping(ctx context.Context) error
	// Exec runs a statement that returns no rows (DDL, DELETE, ALTER).
	Exec(ctx context.Context, query string, args ...any) error
	// Select runs a query and appends its rows to dest.
	Select(ctx context.Context, dest any, query string, args ...any) error
	// SelectStrings runs a query whose columns are all of type String and
	// hands each row's values to fn, in the order of the query's columns,
	// as the rows arrive: memory does not grow with the result, which
	// Select's slice would hold whole. The values are only valid during
	// the call; fn copies what it keeps. An error from fn stops the query
	// and is returned.
	SelectStrings(ctx context.Context, fn func(row [][]byte) error, query string, args ...any) error
	// SelectFormats runs a query once and hands its result to fn in
	// chunks as the rows arrive, written as the engine writes each of
	// formats: fn(i, chunk) gets a chunk of rows in formats[i], and each
	// format's chunks hold the same rows in the same order. A format is
	// one of LineFormats, which write each row on a line of its own with
	// no header, so a chunk always ends at the end of a row. Calls for
	// one format come one after another; calls for different formats may
	// run at the same time. A chunk is only valid during its call; an
	// error from fn stops the query and is returned.
	SelectFormats(ctx context.Context, formats []string, fn func(format int, chunk []byte) error, query string, args ...any) error
	// Insert writes rows into table as one batch; every row holds one value
	// per column, in the order of columns.
	Insert(ctx context.Context, table string, columns []string, rows [][]any) error
	// Backend reports BackendEmbedded or BackendServer.
	Backend() string
	// Database reports the database every unqualified table name refers to.
	Database() string
	// Close releases the connections; calls after Close return ErrClosed.
	Close() error
}

// Open connects to the backend cfg selects and creates the database if it is
// missing.
//
// On error the Warehouse is nil, never a nil pointer of a backend's type
// inside a non-nil interface, so a caller's cleanup cannot call Close on it.
func Open(ctx context.Context, cfg Config) (Warehouse, error) {
	if cfg.URL != "" {
		w, err := openServer(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return w, nil
	}
	w, err := openEmbedded(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Named gives a query parameter its value: Named("from", t) fills the
// placeholder {from:DateTime64(3)}. It returns clickhouse-go's named value,
// so clickhouse.Named works as well.
//
// Accepted values: nil (NULL for a Nullable type), string, []byte, bool, every
// integer and float type, time.Time, pointers to these, slices of them (for
// Array types) and fmt.Stringer values such as uuid.UUID and decimal.Decimal.
func Named(name string, value any) driver.NamedValue {
	return clickhouse.Named(name, value)
}

// LineFormats are the output formats SelectFormats takes.
var LineFormats = []string{"JSONEachRow", "CSV"}

// checkLineFormats refuses a format SelectFormats does not take, so that
// a format name can never change the statement it is written into.
func checkLineFormats(formats []string) error {
	if len(formats) == 0 {
		return errors.New("formats: want at least one")
	}
	for _, format := range formats {
		if !slices.Contains(LineFormats, format) {
			return fmt.Errorf("format %q: want one of %s", format, strings.Join(LineFormats, ", "))
		}
	}
	return nil
}

// formattedChunk is about how many bytes of its first format
// selectFormatsByEngine hands over at a time.
const formattedChunk = 1 << 20

// selectFormatsByEngine has the engine write each row in each format, one
// String per row and format (formatRowNoNewline), through selectStrings,
// and gathers the rows into chunks.
func selectFormatsByEngine(ctx context.Context, selectStrings func(ctx context.Context, fn func(row [][]byte) error, query string, args ...any) error,
	formats []string, fn func(format int, chunk []byte) error, query string, args ...any) error {
	cols := make([]string, len(formats))
	for i, f := range formats {
		cols[i] = fmt.Sprintf("formatRowNoNewline('%s', *) AS f%d", f, i)
	}
	bufs := make([][]byte, len(formats))
	flush := func() error {
		for i, buf := range bufs {
			if err := fn(i, buf); err != nil {
				return err
			}
			bufs[i] = buf[:0]
		}
		return nil
	}
	err := selectStrings(ctx, func(row [][]byte) error {
		for i, v := range row {
			bufs[i] = append(append(bufs[i], v...), '\n')
		}
		if len(bufs[0]) < formattedChunk {
			return nil
		}
		return flush()
	}, "SELECT "+strings.Join(cols, ", ")+" FROM ("+query+")", args...)
	if err != nil || len(bufs[0]) == 0 {
		return err
	}
	return flush()
}

// identRe is what this package accepts as a table, column or database name.
// Names are checked rather than escaped so that an identifier coming from a
// caller can never change the statement around it.
var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkIdent(kind, name string) error {
	if !identRe.MatchString(name) {
		return fmt.Errorf("invalid %s name %q: letters, digits and underscore only", kind, name)
	}
	return nil
}

// checkTable accepts table or database.table.
func checkTable(table string) error {
	db, name, qualified := strings.Cut(table, ".")
	if qualified {
		if err := checkIdent("database", db); err != nil {
			return err
		}
		return checkIdent("table", name)
	}
	return checkIdent("table", table)
}

// insertHead builds "INSERT INTO table (a, b)" from checked names.
func insertHead(table string, columns []string) (string, error) {
	if err := checkTable(table); err != nil {
		return "", err
	}
	if len(columns) == 0 {
		return "", errors.New("insert needs at least one column")
	}
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	for i, c := range columns {
		if err := checkIdent("column", c); err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c)
	}
	b.WriteString(")")
	return b.String(), nil
}

// namedArgs checks that every query argument is a named parameter.
func namedArgs(args []any) ([]driver.NamedValue, error) {
	out := make([]driver.NamedValue, 0, len(args))
	seen := make(map[string]bool, len(args))
	for i, a := range args {
		nv, ok := a.(driver.NamedValue)
		if !ok {
			return nil, fmt.Errorf("query argument %d is %T: pass parameters as warehouse.Named(name, value) for {name:Type} placeholders", i, a)
		}
		if err := checkIdent("parameter", nv.Name); err != nil {
			return nil, err
		}
		if seen[nv.Name] {
			return nil, fmt.Errorf("query parameter %q given twice", nv.Name)
		}
		seen[nv.Name] = true
		out = append(out, nv)
	}
	return out, nil
}
