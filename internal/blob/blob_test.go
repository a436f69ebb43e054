package blob

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// contract runs the same checks on every kind of store: what one test
// proves for a folder it proves for a bucket.
func contract(t *testing.T, s *Store) {
	ctx := context.Background()
	put := func(key, body string) {
		t.Helper()
		n, err := s.Put(ctx, key, "application/octet-stream", strings.NewReader(body))
		if err != nil || n != int64(len(body)) {
			t.Fatalf("Put %s = %d, %v", key, n, err)
		}
	}
	read := func(key string) (string, error) {
		t.Helper()
		r, err := s.Open(ctx, key)
		if err != nil {
			return "", err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err == nil && r.Size() != int64(len(b)) {
			t.Errorf("Size of %s = %d, read %d bytes", key, r.Size(), len(b))
		}
		return string(b), err
	}

	put("assets/u1/a1/original", "one")
	put("assets/u1/a1/preview.png", "preview")
	put("assets/u1/a2/original", "two")
	put("assets/u2/a3/original", "three")
	put("exports/pr_1/x.zip", "zip")

	t.Run("read back", func(t *testing.T) {
		if got, err := read("assets/u1/a2/original"); err != nil || got != "two" {
			t.Fatalf("read = %q, %v", got, err)
		}
	})
	t.Run("replace", func(t *testing.T) {
		put("assets/u1/a2/original", "two again")
		if got, _ := read("assets/u1/a2/original"); got != "two again" {
			t.Fatalf("read after replace = %q", got)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := read("assets/u9/none"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open of a missing file = %v, want fs.ErrNotExist", err)
		}
		if ok, err := s.Exists(ctx, "assets/u9/none"); err != nil || ok {
			t.Fatalf("Exists of a missing file = %v, %v", ok, err)
		}
	})
	t.Run("folders and lists", func(t *testing.T) {
		dirs, err := s.Folders(ctx, "assets/u1/")
		if err != nil || !slices.Equal(dirs, []string{"a1", "a2"}) {
			t.Fatalf("Folders = %v, %v", dirs, err)
		}
		keys, err := s.List(ctx, "assets/u1/")
		want := []string{"assets/u1/a1/original", "assets/u1/a1/preview.png", "assets/u1/a2/original"}
		if err != nil || !slices.Equal(keys, want) {
			t.Fatalf("List = %v, %v; want %v", keys, err, want)
		}
		if dirs, err := s.Folders(ctx, "nothing/"); err != nil || len(dirs) != 0 {
			t.Fatalf("Folders of nothing = %v, %v", dirs, err)
		}
	})
	t.Run("a failed write stores nothing", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := s.Write(ctx, "exports/pr_2/y.zip", "application/zip", func(w io.Writer) error {
			if _, err := w.Write(bytes.Repeat([]byte("x"), 4096)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Write = %v, want the writer's error", err)
		}
		if keys, _ := s.List(ctx, "exports/"); !slices.Equal(keys, []string{"exports/pr_1/x.zip"}) {
			t.Fatalf("after a failed write the store holds %v", keys)
		}
	})
	t.Run("delete a folder", func(t *testing.T) {
		n, err := s.DeletePrefix(ctx, "assets/u1/")
		if err != nil || n != 3 {
			t.Fatalf("DeletePrefix = %d, %v; want 3", n, err)
		}
		if dirs, _ := s.Folders(ctx, "assets/"); !slices.Equal(dirs, []string{"u2"}) {
			t.Fatalf("folders after deletion: %v", dirs)
		}
		// Deleting again is harmless.
		if n, err := s.DeletePrefix(ctx, "assets/u1/"); err != nil || n != 0 {
			t.Fatalf("second DeletePrefix = %d, %v", n, err)
		}
		if err := s.Delete(ctx, "assets/u1/a1/original"); err != nil {
			t.Fatalf("Delete of a deleted file: %v", err)
		}
	})
	t.Run("keys that could escape are refused", func(t *testing.T) {
		for _, key := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", `a\b`, "a/\x00b", "a/", "a\nb", strings.Repeat("k", 1100)} {
			if _, err := s.Put(ctx, key, "", strings.NewReader("x")); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Put %q = %v, want ErrInvalidKey", key, err)
			}
			if _, err := s.Open(ctx, key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Open %q = %v, want ErrInvalidKey", key, err)
			}
		}
		if _, err := s.DeletePrefix(ctx, "assets"); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("DeletePrefix without a trailing slash = %v, want ErrInvalidKey", err)
		}
	})
}

func TestFolderStore(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "files")
	s, err := Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	contract(t, s)

	t.Run("files keep their place and are private", func(t *testing.T) {
		fi, err := os.Stat(filepath.Join(dir, "assets", "u2", "a3", "original"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != fileMode {
			t.Errorf("file mode %v, want %v", fi.Mode().Perm(), fileMode)
		}
	})
	t.Run("no folder outlives its last file", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(dir, "assets", "u1")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the folder of deleted files: %v, want it gone", err)
		}
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("the root went with its files: %v", err)
		}
	})
	t.Run("nothing but the files", func(t *testing.T) {
		var got []string
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && p != dir {
				rel, _ := filepath.Rel(dir, p)
				got = append(got, filepath.ToSlash(rel))
			}
			return err
		})
		want := []string{"assets", "assets/u2", "assets/u2/a3", "assets/u2/a3/original", "exports", "exports/pr_1", "exports/pr_1/x.zip"}
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("the folder holds %v (%v), want %v: no sidecar or temporary files, no empty folders", got, err, want)
		}
	})
}

func TestOpenURLs(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"no scheme", "/srv/files", "not a URL"},
		{"unknown scheme", "ftp://host/files", "unsupported scheme ftp"},
		{"file with parameters", "file:///srv/files?x=1", "takes no parameters"},
		{"s3 without bucket", "s3://?region=x", "names no bucket"},
		{"password never shown", "gs://user:secret@bucket", "unsupported scheme gs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(context.Background(), tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open(%q) = %v, want an error saying %q", tt.url, err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
	t.Run("relative folder", func(t *testing.T) {
		t.Chdir(t.TempDir())
		s, err := Open(context.Background(), "file://var/files")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if !strings.HasSuffix(s.String(), filepath.Join("var", "files")) || !filepath.IsAbs(strings.TrimPrefix(s.String(), "folder ")) {
			t.Fatalf("store %s, want the absolute var/files", s)
		}
	})
}

// TestSubAndRandomAccess reads a ZIP straight from the store, as the
// download of an access package and its tests do, through a Sub store.
func TestSubAndRandomAccess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	files, err := root.Sub("files")
	if err != nil {
		t.Fatal(err)
	}
	randomAccess(t, files, func(key string) {
		if _, err := os.Stat(filepath.Join(dir, "files", filepath.FromSlash(key))); err != nil {
			t.Fatalf("the Sub store's file is not in its folder: %v", err)
		}
		if keys, err := root.List(ctx, "files/"); err != nil || !slices.Equal(keys, []string{"files/" + key}) {
			t.Fatalf("List in the root = %v, %v", keys, err)
		}
	})
	if err := files.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing the Sub store leaves the root open.
	if _, err := root.List(ctx, "files/"); err != nil {
		t.Fatalf("the root after its Sub store closed: %v", err)
	}
}

// randomAccess stores a ZIP in s, checks where it landed with stored
// (given its key), reads it back through ReadAt as archive/zip does and
// in sequence, then deletes it.
func randomAccess(t *testing.T, s *Store, stored func(key string)) {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 3 {
		w, err := zw.Create(fmt.Sprintf("f%d.txt", i))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "file %d %s", i, strings.Repeat("x", 10000*i))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	const key = "exports/p.zip"
	if _, err := s.Put(ctx, key, "application/zip", bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	stored(key)
	if keys, err := s.List(ctx, "exports/"); err != nil || !slices.Equal(keys, []string{key}) {
		t.Fatalf("List = %v, %v", keys, err)
	}
	r, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil || st.Size() != int64(buf.Len()) || st.Name() != "p.zip" {
		t.Fatalf("Stat = %v %v", st, err)
	}
	zr, err := zip.NewReader(r, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !strings.HasPrefix(string(b), fmt.Sprintf("file %d ", i)) || len(b) != len(fmt.Sprintf("file %d ", i))+10000*i {
			t.Fatalf("%s: %d bytes, %v", f.Name, len(b), err)
		}
	}
	// Sequential reading is not moved by ReadAt.
	all, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(all, buf.Bytes()) {
		t.Fatalf("Read after ReadAt: %d bytes, %v; want the %d bytes stored", len(all), err, buf.Len())
	}
	if n, err := s.DeletePrefix(ctx, "exports/"); err != nil || n != 1 {
		t.Fatalf("DeletePrefix = %d, %v", n, err)
	}
}

// TestS3Unreachable opens an S3 store on an endpoint where nothing
// listens: the s3blob driver is wired, and Open fails at once rather
// than at the first upload, naming the bucket and endpoint. No server
// answers it here; the contract test above runs against a folder only.
func TestS3Unreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := Open(ctx, "s3://steward-files?endpoint=http://127.0.0.1:1&region=us-east-1&use_path_style=true&anonymous=true")
	if err == nil || !strings.Contains(err.Error(), "S3 bucket steward-files at http://127.0.0.1:1") {
		t.Fatalf("Open of an unreachable S3 endpoint = %v, want an error naming the bucket and endpoint", err)
	}
}

// EnvTestURL names a bucket (or folder) the contract test also runs
// against, in a folder of its own that it empties afterwards: the way to
// check an S3-compatible server before relying on it.
const EnvTestURL = "STEWARD_TEST_BLOB_URL"

func TestConfiguredStore(t *testing.T) {
	raw := os.Getenv(EnvTestURL)
	if raw == "" {
		t.Skip(EnvTestURL + " names no store to test")
	}
	ctx := context.Background()
	s, err := Open(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	sub, err := s.Sub("steward-blob-test-" + hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range []string{"assets/", "exports/"} {
			if _, err := sub.DeletePrefix(context.Background(), p); err != nil {
				t.Errorf("clean up %s: %v", p, err)
			}
		}
	})
	contract(t, sub)
}
