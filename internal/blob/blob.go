// Package blob provides the file store every instance of Steward shares:
// uploaded files, generated media and access export packages. It is a
// folder by default (file://) and an S3-compatible bucket in production
// (s3://), both behind gocloud.dev/blob, so that a file written by one
// instance is read, served and deleted by any other.
//
// Keys are slash-separated paths built by the callers from ids they
// checked ("assets/u…/01…/original", "exports/pr_…/….zip"). A key that
// could leave the store's root, or that a folder could not hold, is
// refused before it reaches the driver.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/gcerrors"

	// The s3blob driver registers the s3:// scheme with gcblob.OpenBucket.
	_ "gocloud.dev/blob/s3blob"
)

// Schemes accepted by Open.
const (
	SchemeFile = "file"
	SchemeS3   = "s3"
)

// Modes of the folders and files of a file store. Files hold personal data
// and are readable by the owner only; folders let the group list them, as
// the data dir does.
const (
	dirMode  os.FileMode = 0o750
	fileMode os.FileMode = 0o600
)

// maxKeyBytes bounds a key; S3 allows 1024 bytes.
const maxKeyBytes = 1024

// ErrInvalidKey is the error of a key Store refuses.
var ErrInvalidKey = errors.New("blob: invalid key")

// Store is a file store: a folder or an S3-compatible bucket, or a folder
// of one (Sub). It is safe for concurrent use.
type Store struct {
	bucket *gcblob.Bucket
	// dir is the absolute root of a folder store, empty for a bucket.
	// Deleting a folder store's last file in a folder removes the folder,
	// as a bucket has no folders to leave behind.
	dir string
	// prefix is the folder of a Sub store ("files/"), empty for the root;
	// keys given and returned are relative to it.
	prefix string
	// desc names the store for messages, without credentials.
	desc string
}

// Open opens the store rawURL names:
//
//	file:///srv/steward/files             a folder (file://relative/path is relative to the working directory)
//	s3://bucket?region=eu-west-1          an S3 bucket, credentials from the AWS environment
//	s3://bucket?endpoint=http://host:9000&use_path_style=true&region=us-east-1
//	                                      an S3-compatible server (MinIO, Ceph, R2, ...)
//
// The S3 parameters are those of gocloud.dev/blob/s3blob. A server that
// sends no checksums wants response_checksum_validation=when_required as
// well: without it the AWS SDK writes a line to stderr on every read.
// Open checks that the store answers, so a wrong bucket or folder shows
// at start-up.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("open file store: %q is not a URL: want file:///path or s3://bucket", redact(rawURL))
	}
	switch scheme {
	case SchemeFile:
		if strings.ContainsAny(rest, "?#") {
			return nil, fmt.Errorf("open file store: a file:// URL takes no parameters: %q", rawURL)
		}
		return OpenDir(rest)
	case SchemeS3:
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("open file store: %s names no bucket: want s3://bucket?region=...", redact(rawURL))
		}
		b, err := gcblob.OpenBucket(ctx, rawURL)
		if err != nil {
			return nil, fmt.Errorf("open file store %s: %w", redact(rawURL), err)
		}
		s := &Store{bucket: b, desc: "S3 bucket " + u.Host}
		if ep := u.Query().Get("endpoint"); ep != "" {
			s.desc += " at " + ep
		}
		ok, err := b.IsAccessible(ctx)
		if err == nil && !ok {
			err = errors.New("the bucket does not exist")
		}
		if err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("open file store %s: %w", s.desc, err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("open file store: unsupported scheme %s: want file:// or s3://", scheme)
	}
}

// OpenDir opens the folder dir as a store, creating it if missing.
func OpenDir(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open file store: the folder is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	if err := os.MkdirAll(abs, dirMode); err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	b, err := fileblob.OpenBucket(abs, &fileblob.Options{
		// A file is written next to its final place and renamed into it:
		// a reader never sees half a file, and the rename never crosses
		// file systems.
		NoTempDir:   true,
		DirFileMode: dirMode,
		// The SQL store keeps each file's type and name; no sidecar
		// files, so the folder holds exactly the files stored.
		Metadata: fileblob.MetadataDontWrite,
	})
	if err != nil {
		return nil, fmt.Errorf("open file store %s: %w", abs, err)
	}
	return &Store{bucket: b, dir: abs, desc: "folder " + abs}, nil
}

// String names the store for messages: its folder, or its bucket and
// endpoint. It never holds credentials.
func (s *Store) String() string {
	if s.prefix != "" {
		return s.desc + ", folder " + strings.TrimSuffix(s.prefix, "/")
	}
	return s.desc
}

// Sub returns the store of the folder dir ("files") of s: its keys are
// relative to that folder. It shares s's connection; closing s closes it.
func (s *Store) Sub(dir string) (*Store, error) {
	if err := checkKey(dir); err != nil {
		return nil, err
	}
	sub := *s
	sub.prefix = s.prefix + dir + "/"
	return &sub, nil
}

// Close releases the store. Closing a Sub store does nothing: its root
// owns the connection.
func (s *Store) Close() error {
	if s.prefix != "" {
		return nil
	}
	if err := s.bucket.Close(); err != nil {
		return fmt.Errorf("close file store: %w", err)
	}
	return nil
}

// Write stores what fn writes at key, replacing any file there, and
// returns its size. The file appears whole or not at all: when fn fails or
// ctx ends, nothing is stored. A folder store syncs the file to disk
// before it takes its name.
func (s *Store) Write(ctx context.Context, key, contentType string, fn func(w io.Writer) error) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var file *os.File
	w, err := s.bucket.NewWriter(wctx, s.prefix+key, &gcblob.WriterOptions{
		ContentType: contentType,
		// Without detection the file is opened at once, so it can be
		// synced before Close.
		DisableContentTypeDetection: true,
		BeforeWrite: func(as func(any) bool) error {
			// Only a folder store exposes its file.
			if as(&file) && file != nil {
				if err := file.Chmod(fileMode); err != nil {
					return err
				}
			}
			return nil
		},
	})
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	// abort discards the write: cancelling before Close does, and the
	// folders made for it go if nothing else is in them.
	abort := func() {
		cancel()
		_ = w.Close()
		s.prune(s.prefix + key)
	}
	cw := &countingWriter{w: w}
	if err := fn(cw); err != nil {
		abort()
		return 0, err
	}
	if file != nil {
		if err := file.Sync(); err != nil {
			abort()
			return 0, fmt.Errorf("write %s: %w", key, err)
		}
	}
	if err := w.Close(); err != nil {
		s.prune(s.prefix + key)
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	return cw.n, nil
}

// Put stores the bytes of r at key, as Write does.
func (s *Store) Put(ctx context.Context, key, contentType string, r io.Reader) (int64, error) {
	return s.Write(ctx, key, contentType, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
}

// Reader reads one stored file, in sequence (Read) or at any offset
// (ReadAt, as archive/zip reads).
type Reader struct {
	r    *gcblob.Reader
	name string
	// rangeAt opens the bytes [off, off+n) of the file, under the context
	// the reader was opened with.
	rangeAt func(off, n int64) (io.ReadCloser, error)
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) { return r.r.Read(p) }

// ReadAt implements io.ReaderAt. It reads apart from Read: each call
// opens its own range of the file.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset", r.name)
	}
	if off >= r.Size() {
		return 0, io.EOF
	}
	rc, err := r.rangeAt(off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// Close implements io.Closer.
func (r *Reader) Close() error { return r.r.Close() }

// Size is the size of the file in bytes.
func (r *Reader) Size() int64 { return r.r.Size() }

// Stat describes the file as os.File.Stat does: its name (the last part
// of its key), size and modification time.
func (r *Reader) Stat() (fs.FileInfo, error) {
	return fileInfo{name: path.Base(r.name), size: r.r.Size(), mod: r.r.ModTime()}, nil
}

// Open opens the file at key. A missing file is an error wrapping
// fs.ErrNotExist. The reader reads under ctx: a reader handed to an HTTP
// response that is sent after the handler returns needs a ctx that
// outlives the handler.
func (s *Store) Open(ctx context.Context, key string) (*Reader, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	full := s.prefix + key
	r, err := s.bucket.NewReader(ctx, full, nil)
	if err != nil {
		return nil, s.wrap("open", key, err)
	}
	return &Reader{r: r, name: key, rangeAt: func(off, n int64) (io.ReadCloser, error) {
		rr, err := s.bucket.NewRangeReader(ctx, full, off, n, nil)
		if err != nil {
			return nil, s.wrap("read", key, err)
		}
		return rr, nil
	}}, nil
}

// fileInfo is the fs.FileInfo of a stored file.
type fileInfo struct {
	name string
	size int64
	mod  time.Time
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return fileMode }
func (f fileInfo) ModTime() time.Time { return f.mod }
func (f fileInfo) IsDir() bool        { return false }
func (f fileInfo) Sys() any           { return nil }

// Exists reports whether a file is stored at key.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	ok, err := s.bucket.Exists(ctx, s.prefix+key)
	if err != nil {
		return false, s.wrap("stat", key, err)
	}
	return ok, nil
}

// Delete removes the file at key; a missing file is not an error, so a
// deletion can be retried.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := s.bucket.Delete(ctx, s.prefix+key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return s.wrap("delete", key, err)
	}
	s.prune(s.prefix + key)
	return nil
}

// DeletePrefix removes every file whose key starts with prefix and
// returns how many it removed. prefix must end with "/": it names a
// folder, never part of a name.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	for i, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			return i, err
		}
	}
	return len(keys), nil
}

// List returns the keys of every file under the folder prefix (ending
// with "/"), in key order.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	return s.list(ctx, prefix, "", func(obj *gcblob.ListObject) (string, bool) {
		return strings.TrimPrefix(obj.Key, s.prefix), !obj.IsDir
	})
}

// Folders returns the names of the folders directly under the folder
// prefix (ending with "/") that hold at least one file.
func (s *Store) Folders(ctx context.Context, prefix string) ([]string, error) {
	full := s.prefix + prefix
	return s.list(ctx, prefix, "/", func(obj *gcblob.ListObject) (string, bool) {
		return strings.TrimSuffix(strings.TrimPrefix(obj.Key, full), "/"), obj.IsDir
	})
}

// list walks the listing of the folder prefix (one level deep when
// delimiter is "/") and keeps what name returns for the entries it says
// to keep.
func (s *Store) list(ctx context.Context, prefix, delimiter string, name func(*gcblob.ListObject) (string, bool)) ([]string, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	it := s.bucket.List(&gcblob.ListOptions{Prefix: s.prefix + prefix, Delimiter: delimiter})
	var out []string
	for {
		obj, err := it.Next(ctx)
		// A folder store's folder removed while it is listed (its last
		// file deleted) held nothing more.
		if errors.Is(err, io.EOF) || gcerrors.Code(err) == gcerrors.NotFound {
			return out, nil
		}
		if err != nil {
			return nil, s.wrap("list", prefix, err)
		}
		if n, ok := name(obj); ok {
			out = append(out, n)
		}
	}
}

// prune removes the folders of a folder store that the deletion of key
// (a full key, prefix included) left empty, up to the root. A folder still holding anything stays (os.Remove
// refuses it), so a concurrent write into it is never lost.
func (s *Store) prune(key string) {
	if s.dir == "" {
		return
	}
	for dir := path.Dir(key); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if err := os.Remove(filepath.Join(s.dir, filepath.FromSlash(dir))); err != nil {
			return
		}
	}
}

// wrap names the operation and key of a driver error; a missing file
// wraps fs.ErrNotExist.
func (s *Store) wrap(op, key string, err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%s %s: %w", op, key, fs.ErrNotExist)
	}
	return fmt.Errorf("%s %s in the file store: %w", op, key, err)
}

// checkKey refuses a key that is empty, absolute, holds an empty, "." or
// ".." segment, a backslash, a control character or invalid UTF-8, ends
// with "/", or is longer than S3 allows.
func checkKey(key string) error {
	if key == "" || len(key) > maxKeyBytes || !utf8.ValidString(key) || strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w %q", ErrInvalidKey, key)
	}
	return checkPath(key)
}

// checkPrefix refuses a folder prefix that is not a valid key followed
// by "/".
func checkPrefix(prefix string) error {
	if !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("%w: prefix %q does not end with /", ErrInvalidKey, prefix)
	}
	return checkKey(strings.TrimSuffix(prefix, "/"))
}

func checkPath(key string) error {
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w %q", ErrInvalidKey, key)
		}
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w %q", ErrInvalidKey, key)
		}
	}
	return nil
}

// redact drops a password from a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "an unreadable URL"
	}
	return u.Redacted()
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
