// Package sqlmigrations provides the SQL store's migrations for
// golang-migrate, written once for SQLite and PostgreSQL.
//
// The files follow one rule: portable SQL where it can be, one folder per
// dialect where it cannot. common/NNNN_name.up.sql and .down.sql apply to
// both dialects. A file of the same name under sqlite/ or postgres/ replaces
// the common one for that dialect only. Every migration therefore has the
// same version number and name on both dialects, so a version reported by
// one store means the same schema step on the other.
//
// Source checks the whole tree before it hands anything out: two names with
// one version number, a missing down file, a badly named file or a dialect
// file that replaces nothing are errors, not files golang-migrate would
// quietly skip or trip over later.
package sqlmigrations

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// files holds the migrations. The dialect folders are embedded whole, not
// by a *.sql pattern, so a new override can never be left out of the binary
// by an embed line nobody remembered to change.
//
//go:embed common sqlite postgres
var files embed.FS

// Dialect names accepted by Source; they match sqlstore.Dialect.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// commonDir holds the migrations shared by every dialect.
const commonDir = "common"

// readme is the one file besides migrations a folder may hold.
const readme = "README.md"

// migrationName matches NNNN_name.up.sql and NNNN_name.down.sql, the names
// `migrate create -seq -digits 4 -ext sql` produces.
var migrationName = regexp.MustCompile(`^([0-9]{4,})_([a-z0-9_]+)\.(up|down)\.sql$`)

// Source returns the migrations of one dialect ("sqlite" or "postgres") as
// a flat file system: its root lists every migration once, and opening a
// name gives the dialect's own file when it has one and the common file
// otherwise. Hand it to golang-migrate with iofs.New(src, ".").
func Source(dialect string) (fs.FS, error) {
	return source(files, dialect)
}

// source is Source over any tree laid out like the embedded one.
func source(fsys fs.FS, dialect string) (*overlay, error) {
	if dialect != SQLite && dialect != Postgres {
		return nil, fmt.Errorf("migrations: unknown dialect %q (want %q or %q)", dialect, SQLite, Postgres)
	}
	if err := check(fsys); err != nil {
		return nil, err
	}
	common, err := readNames(fsys, commonDir)
	if err != nil {
		return nil, err
	}
	own, err := readNames(fsys, dialect)
	if err != nil {
		return nil, err
	}
	o := &overlay{fsys: fsys, files: make(map[string]string, len(common))}
	for _, name := range common {
		o.files[name] = path.Join(commonDir, name)
		o.names = append(o.names, name)
	}
	for _, name := range own {
		o.files[name] = path.Join(dialect, name)
	}
	slices.Sort(o.names)
	return o, nil
}

// check reports every problem of the tree at once, so one test run shows
// all of them.
func check(fsys fs.FS) error {
	var errs []error
	common, err := readNames(fsys, commonDir)
	if err != nil {
		return err
	}
	errs = append(errs, checkNames(commonDir, common)...)

	type pair struct{ up, down bool }
	names := map[string]string{} // version -> name
	pairs := map[string]*pair{}  // version_name -> directions present
	for _, file := range common {
		m := migrationName.FindStringSubmatch(file)
		if m == nil {
			continue // already reported by checkNames
		}
		version, name, direction := m[1], m[2], m[3]
		key, _ := strconv.ParseUint(version, 10, 64)
		v := strconv.FormatUint(key, 10)
		if other, ok := names[v]; ok && other != version+"_"+name {
			errs = append(errs, fmt.Errorf("migrations: version %s is used by both %s and %s", v, other, version+"_"+name))
		}
		names[v] = version + "_" + name
		p := pairs[version+"_"+name]
		if p == nil {
			p = &pair{}
			pairs[version+"_"+name] = p
		}
		if direction == "up" {
			p.up = true
		} else {
			p.down = true
		}
	}
	for _, id := range sortedKeys(pairs) {
		p := pairs[id]
		if !p.up {
			errs = append(errs, fmt.Errorf("migrations: %s/%s.up.sql is missing", commonDir, id))
		}
		if !p.down {
			errs = append(errs, fmt.Errorf("migrations: %s/%s.down.sql is missing", commonDir, id))
		}
	}

	for _, dialect := range []string{SQLite, Postgres} {
		own, err := readNames(fsys, dialect)
		if err != nil {
			return err
		}
		errs = append(errs, checkNames(dialect, own)...)
		for _, file := range own {
			if migrationName.MatchString(file) && !slices.Contains(common, file) {
				errs = append(errs, fmt.Errorf("migrations: %s/%s replaces nothing: a dialect file must have a %s/ file of the same name (give a step that only one dialect needs a %s/ file that does nothing)", dialect, file, commonDir, commonDir))
			}
		}
	}
	return errors.Join(errs...)
}

// checkNames reports files golang-migrate would skip or misread.
func checkNames(dir string, names []string) []error {
	var errs []error
	for _, name := range names {
		if name != readme && !migrationName.MatchString(name) {
			errs = append(errs, fmt.Errorf("migrations: %s/%s is not named NNNN_name.up.sql or NNNN_name.down.sql", dir, name))
		}
	}
	return errs
}

// readNames lists the files of dir, leaving out README.md. A missing folder
// reads as empty; a subfolder is an error because golang-migrate would
// ignore whatever it holds.
func readNames(fsys fs.FS, dir string) ([]string, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("migrations: read %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			return nil, fmt.Errorf("migrations: %s/%s is a folder; migrations are flat", dir, e.Name())
		}
		if e.Name() != readme {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// overlay is the merged, flat view of one dialect's migrations.
type overlay struct {
	fsys  fs.FS
	files map[string]string // migration file name -> path in fsys
	names []string          // sorted migration file names
}

var (
	_ fs.FS        = (*overlay)(nil)
	_ fs.ReadDirFS = (*overlay)(nil)
)

// Open opens "." (the merged listing) or one migration file.
func (o *overlay) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		entries, err := o.ReadDir(".")
		if err != nil {
			return nil, err
		}
		return &dir{entries: entries}, nil
	}
	p, ok := o.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return o.fsys.Open(p)
}

// ReadDir lists the merged migrations; only the root is a folder.
func (o *overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		if _, ok := o.files[name]; ok || !fs.ValidPath(name) {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
		}
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	entries := make([]fs.DirEntry, 0, len(o.names))
	for _, n := range o.names {
		info, err := fs.Stat(o.fsys, o.files[n])
		if err != nil {
			return nil, fmt.Errorf("migrations: stat %s: %w", o.files[n], err)
		}
		entries = append(entries, fs.FileInfoToDirEntry(info))
	}
	return entries, nil
}

// dir is the open root folder of an overlay.
type dir struct {
	entries []fs.DirEntry
	offset  int
}

var _ fs.ReadDirFile = (*dir)(nil)

func (d *dir) Stat() (fs.FileInfo, error) { return rootInfo{}, nil }

func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: ".", Err: fs.ErrInvalid}
}

func (d *dir) Close() error { return nil }

// ReadDir follows fs.ReadDirFile: n <= 0 returns the rest, n > 0 at most n
// entries and io.EOF once nothing is left.
func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.offset:]
	if n <= 0 {
		d.offset = len(d.entries)
		return slices.Clone(rest), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.offset += n
	return slices.Clone(rest[:n]), nil
}

// rootInfo describes the overlay's root folder.
type rootInfo struct{}

func (rootInfo) Name() string       { return "." }
func (rootInfo) Size() int64        { return 0 }
func (rootInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o555 }
func (rootInfo) ModTime() time.Time { return time.Time{} }
func (rootInfo) IsDir() bool        { return true }
func (rootInfo) Sys() any           { return nil }
