package warehouse

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// server is the Warehouse over a ClickHouse server, through clickhouse-go's
// native protocol. clickhouse-go sends {name:Type} parameters to the server
// apart from the SQL, which needs a server that speaks protocol revision
// 54459 or later; against an older server a query with parameters fails with
// a clear error instead of being rewritten client-side.
type server struct {
	conn     driver.Conn
	opts     *clickhouse.Options
	database string
	version  *driver.ServerVersion
	closed   atomic.Bool
}

func openServer(ctx context.Context, cfg Config) (*server, error) {
	opts, err := clickhouse.ParseDSN(cfg.URL)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("open warehouse server: invalid clickhouse URL (want clickhouse://user:pass@host:9000/db)")
	}
	database := opts.Auth.Database
	if database == "" {
		database = cfg.Database
	}
	if database == "" {
		database = DefaultDatabase
	}
	if err := checkIdent("database", database); err != nil {
		return nil, fmt.Errorf("open warehouse server: %w", err)
	}

	// The database may not exist yet, so create it over a connection to the
	// user's default database first.
	boot := *opts
	boot.Auth.Database = ""
	bootConn, err := clickhouse.Open(&boot)
	if err != nil {
		return nil, fmt.Errorf("open warehouse server: %w", err)
	}
	err = bootConn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+database)
	bootConn.Close()
	if err != nil {
		return nil, fmt.Errorf("open warehouse server: create database %s: %w", database, err)
	}

	opts.Auth.Database = database
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open warehouse server: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open warehouse server: %w", err)
	}
	version, err := conn.ServerVersion()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open warehouse server: server version: %w", err)
	}
	return &server{conn: conn, opts: opts, database: database, version: version}, nil
}

// args checks query arguments and that the server can take them.
func (s *server) args(args []any) ([]any, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if len(args) == 0 {
		return nil, nil
	}
	named, err := namedArgs(args)
	if err != nil {
		return nil, err
	}
	if s.version.Revision < proto.DBMS_MIN_PROTOCOL_VERSION_WITH_PARAMETERS {
		return nil, fmt.Errorf("ClickHouse server %s is too old for query parameters ({name:Type}); upgrade the server", s.version.Version)
	}
	out := make([]any, len(named))
	for i, nv := range named {
		out[i] = nv
	}
	return out, nil
}

func (s *server) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("ping warehouse server: %w", err)
	}
	return nil
}

func (s *server) Exec(ctx context.Context, query string, args ...any) error {
	a, err := s.args(args)
	if err != nil {
		return err
	}
	return s.conn.Exec(ctx, query, a...)
}

func (s *server) Select(ctx context.Context, dest any, query string, args ...any) error {
	if _, _, err := destSlice(dest); err != nil {
		return err
	}
	a, err := s.args(args)
	if err != nil {
		return err
	}
	return s.conn.Select(ctx, dest, query, a...)
}

func (s *server) SelectStrings(ctx context.Context, fn func(row [][]byte) error, query string, args ...any) error {
	a, err := s.args(args)
	if err != nil {
		return err
	}
	rows, err := s.conn.Query(ctx, query, a...)
	if err != nil {
		return err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	for _, t := range types {
		if t.DatabaseTypeName() != "String" {
			return fmt.Errorf("column %s is %s: only String columns can be read this way", t.Name(), t.DatabaseTypeName())
		}
	}
	vals := make([]string, len(types))
	ptrs := make([]any, len(types))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	row := make([][]byte, len(types))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			row[i] = append(row[i][:0], v...)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return rows.Err()
}

// SelectFormats has the server write each row in each format, since the
// native protocol carries columns rather than formatted text.
func (s *server) SelectFormats(ctx context.Context, formats []string, fn func(format int, chunk []byte) error, query string, args ...any) error {
	if err := checkLineFormats(formats); err != nil {
		return err
	}
	return selectFormatsByEngine(ctx, s.SelectStrings, formats, fn, query, args...)
}

// Insert sends rows as one native batch with an explicit column list; the
// server checks each value against its column type.
func (s *server) Insert(ctx context.Context, table string, columns []string, rows [][]any) (err error) {
	head, err := insertHead(table, columns)
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if len(rows) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, head)
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	defer func() {
		if err != nil {
			_ = batch.Abort()
		}
	}()
	for i, row := range rows {
		if len(row) != len(columns) {
			return fmt.Errorf("insert into %s: row %d has %d values for %d columns", table, i, len(row), len(columns))
		}
		if err := batch.Append(row...); err != nil {
			return fmt.Errorf("insert into %s: row %d: %w", table, i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}

func (s *server) Backend() string  { return BackendServer }
func (s *server) Database() string { return s.database }

func (s *server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("close warehouse server: %w", err)
	}
	return nil
}

var _ Warehouse = (*server)(nil)

// MinServerVersion is the oldest ClickHouse server Steward's schema and
// queries run on. What sets it:
//   - erasure deletes through lightweight updates (patch parts), which
//     need 25.7, on tables with the block number and offset columns
//     (migrations/clickhouse/0009), settings older than that;
//   - lightweight DELETE, the fallback, is on by default from 23.3;
//   - {name:Type} query parameters over the native protocol (22.8);
//   - table and column COMMENTs carrying the data categories, DateTime64,
//     TTL, LowCardinality and bloom-filter indexes (all older).
//
// The embedded engine is ClickHouse 26.7.
var MinServerVersion = [2]uint64{25, 7}

// CheckServerVersion refuses a ClickHouse server older than
// MinServerVersion, naming both versions. The embedded engine passes.
// Open does not call it, so the adapter itself can be exercised against
// any server; the commands call it before they use a warehouse.
func CheckServerVersion(w Warehouse) error {
	s, ok := w.(*server)
	if !ok {
		return nil
	}
	v := s.version.Version
	if v.Major > MinServerVersion[0] || (v.Major == MinServerVersion[0] && v.Minor >= MinServerVersion[1]) {
		return nil
	}
	return fmt.Errorf("ClickHouse server %d.%d.%d is too old: Steward needs %d.%d or later (lightweight DELETE for erasure, {name:Type} query parameters, column COMMENTs for the data map); upgrade the server",
		v.Major, v.Minor, v.Patch, MinServerVersion[0], MinServerVersion[1])
}
