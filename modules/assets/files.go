package assets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stewardhq/steward/internal/blob"
)

// errNotExist matches a missing file.
var errNotExist = fs.ErrNotExist

// fileStore keeps asset bytes in the folder "assets" of the file store
// every instance shares. Every key it builds comes from ids it checked (see
// validID), and the store refuses any key that could leave its root, so
// neither a file name nor a stored path can reach another place.
type fileStore struct {
	store *blob.Store
}

// newFileStore opens the folder dir as the module's own file store, for a
// module given none.
func newFileStore(dir string) (*fileStore, error) {
	s, err := blob.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("assets: files dir: %w", err)
	}
	return &fileStore{store: s}, nil
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

// write stores data at rel; a reader never sees half a file.
func (s *fileStore) write(ctx context.Context, rel, contentType string, data []byte) error {
	if _, err := s.store.Put(ctx, rel, contentType, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("assets: write file: %w", err)
	}
	return nil
}

// open opens the file at rel; a missing file is an error wrapping
// fs.ErrNotExist. The reader reads under ctx.
func (s *fileStore) open(ctx context.Context, rel string) (*blob.Reader, error) {
	r, err := s.store.Open(ctx, rel)
	if err != nil {
		return nil, fmt.Errorf("assets: open file: %w", err)
	}
	return r, nil
}

// removeAll removes the folder rel and everything in it; a missing folder
// is not an error, so removal can be retried.
func (s *fileStore) removeAll(ctx context.Context, rel string) error {
	if _, err := s.store.DeletePrefix(ctx, rel+"/"); err != nil {
		return fmt.Errorf("assets: remove files: %w", err)
	}
	return nil
}

// countDirs counts the asset folders in rel, for erasure reports.
func (s *fileStore) countDirs(ctx context.Context, rel string) (int, error) {
	dirs, err := s.store.Folders(ctx, rel+"/")
	if err != nil {
		return 0, fmt.Errorf("assets: list files: %w", err)
	}
	return len(dirs), nil
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
