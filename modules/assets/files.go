package assets

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// errNotExist matches a missing file.
var errNotExist = os.ErrNotExist

// fileStore keeps asset bytes under root/assets. Every path it builds comes
// from ids it checked (see validID), and every path it opens is checked to
// stay under root, so neither a file name nor a stored path can reach
// another place on disk.
type fileStore struct {
	root string // absolute, cleaned
}

func newFileStore(dir string) (*fileStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("assets: files dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "assets"), 0o750); err != nil {
		return nil, fmt.Errorf("assets: create files dir: %w", err)
	}
	return &fileStore{root: filepath.Clean(abs)}, nil
}

// userDir returns the folder of one owner's assets, relative to the root.
// It holds a digest of the user id rather than the id itself, so the folder
// name is safe whatever characters an id holds, and an erasure can remove
// every file of a user at once without reading the rows.
func userDir(userID string) string {
	sum := sha256.Sum256([]byte("steward asset owner\x00" + userID))
	return path.Join("assets", "u"+hex.EncodeToString(sum[:16]))
}

// assetDir returns the folder of one asset, relative to the root.
func assetDir(userID, assetID string) (string, error) {
	if !validID(assetID) {
		return "", fmt.Errorf("assets: invalid asset id %q", assetID)
	}
	return path.Join(userDir(userID), assetID), nil
}

// validID accepts the ids this module makes: letters, digits, '-' and '_'.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// abs turns a stored relative path into an absolute one, refusing any path
// that would leave the root.
func (s *fileStore) abs(rel string) (string, error) {
	if rel == "" || filepath.IsAbs(rel) || strings.ContainsRune(rel, 0) {
		return "", fmt.Errorf("assets: bad storage path")
	}
	p := filepath.Join(s.root, filepath.FromSlash(rel))
	if !strings.HasPrefix(p, s.root+string(filepath.Separator)) {
		return "", fmt.Errorf("assets: storage path leaves the files dir")
	}
	return p, nil
}

// write stores data at rel atomically: a reader never sees half a file.
func (s *fileStore) write(rel string, data []byte) error {
	p, err := s.abs(rel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return fmt.Errorf("assets: create folder: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("assets: create file: %w", err)
	}
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("assets: write file: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("assets: write file: %w", err)
	}
	return nil
}

func (s *fileStore) open(rel string) (*os.File, error) {
	p, err := s.abs(rel)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("assets: open file: %w", err)
	}
	return f, nil
}

// removeAll removes the folder rel and everything in it; a missing folder
// is not an error, so removal can be retried.
func (s *fileStore) removeAll(rel string) error {
	p, err := s.abs(rel)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("assets: remove files: %w", err)
	}
	return nil
}

// countDirs counts the asset folders in rel, for erasure reports.
func (s *fileStore) countDirs(rel string) (int, error) {
	p, err := s.abs(rel)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("assets: list files: %w", err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() {
			n++
		}
	}
	return n, nil
}

// readAll reads r up to max bytes and reports whether there was more.
func readAll(r io.Reader, max int64) ([]byte, bool, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, false, fmt.Errorf("assets: read file: %w", err)
	}
	if int64(len(data)) > max {
		return nil, true, nil
	}
	return data, false, nil
}

// maxNameBytes bounds a sanitized file name.
const maxNameBytes = 200

// SanitizeFileName returns a file name safe to show and to send in a
// Content-Disposition header: the last element of any path, without
// control, format (bidirectional overrides, zero-width characters) or
// separator characters, without leading dots, at most 200 bytes, and
// "file" when nothing is left. It is for display only: storage paths never
// use it.
func SanitizeFileName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == utf8.RuneError, r == 0:
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			continue
		case r == '"' || r == ':' || r == '*' || r == '?' || r == '<' || r == '>' || r == '|':
			b.WriteRune('_')
		case unicode.IsSpace(r):
			b.WriteRune(' ')
		default:
			b.WriteRune(r)
		}
	}
	out := strings.TrimLeft(strings.TrimSpace(b.String()), ". ")
	out = strings.TrimRight(out, ". ")
	for len(out) > maxNameBytes {
		_, size := utf8.DecodeLastRuneInString(out)
		out = out[:len(out)-size]
	}
	if out == "" {
		return "file"
	}
	return out
}
