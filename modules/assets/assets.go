package assets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
)

// ingest checks and stores one file for userID: the content check, the
// size limit of its type, the bytes and preview on disk, then the row.
// declared and name are what the client said; they are checked against
// the content, never trusted.
func (m *Module) ingest(ctx context.Context, userID, purpose, name, declared string, r io.Reader) (*Asset, error) {
	data, over, err := readAll(r, m.MaxUploadBytes())
	if err != nil {
		return nil, err
	}
	if over {
		return nil, errs.Ef(errs.ErrTooLarge, "The file is larger than %d bytes, the largest accepted size.", m.MaxUploadBytes())
	}
	if len(data) == 0 {
		return nil, errs.Invalid("file", "required", "The file is empty.")
	}
	t, err := sniff(data)
	if err != nil {
		return nil, err
	}
	if limit := m.cfg.MaxBytes[t]; int64(len(data)) > limit {
		return nil, errs.Ef(errs.ErrTooLarge, "The file is %s of %d bytes; at most %d bytes are accepted for this type.", t, len(data), limit)
	}
	if err := checkDeclared(t, declared, name); err != nil {
		return nil, err
	}
	info, err := inspect(data, m.cfg.MaxPixels, m.cfg.PreviewSize)
	if err != nil {
		return nil, err
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	a := &Asset{
		ID:        ids.OrderedHex(),
		UserID:    userID,
		Purpose:   purpose,
		FileName:  SanitizeFileName(name),
		SizeBytes: int64(len(data)),
		MIMEType:  info.mime,
		SHA256:    hex.EncodeToString(sum[:]),
		Width:     int64(info.width),
		Height:    int64(info.height),
		CreatedAt: m.nowUTC(),
	}
	dir, err := assetDir(userID, a.ID)
	if err != nil {
		return nil, err
	}
	a.StoragePath = path.Join(dir, VariantOriginal)
	if err := m.files.write(ctx, a.StoragePath, a.MIMEType, data); err != nil {
		return nil, err
	}
	// A failed ingest removes what it stored, even when ctx ended.
	cleanup := context.WithoutCancel(ctx)
	if info.preview != nil {
		p := path.Join(dir, "preview.png")
		if err := m.files.write(ctx, p, MIMEPNG, info.preview); err != nil {
			return nil, errors.Join(err, m.files.removeAll(cleanup, dir))
		}
		a.PreviewPath = &p
	}
	if err := m.store.insert(ctx, a); err != nil {
		return nil, errors.Join(err, m.files.removeAll(cleanup, dir))
	}
	return a, nil
}

// find returns the asset with id, whoever owns it.
func (m *Module) find(ctx context.Context, id string) (*Asset, error) {
	return m.store.asset(ctx, id)
}

// findOwned returns the asset with id when userID owns it. Another user's
// asset is reported as missing, so ids cannot be probed.
func (m *Module) findOwned(ctx context.Context, userID, id string) (*Asset, error) {
	return m.store.ownedAsset(ctx, userID, id)
}

// remove deletes the row, then the bytes and the preview.
func (m *Module) remove(ctx context.Context, a *Asset) error {
	if err := m.store.delete(ctx, a.ID); err != nil {
		return err
	}
	dir, err := assetDir(a.UserID, a.ID)
	if err != nil {
		return err
	}
	return m.files.removeAll(ctx, dir)
}

// PutAsset stores a file for userID, checked like an upload, and returns
// its id and sniffed media type. Generation stores its outputs this way
// (purpose "generated"). name is for display; mimeType is what the caller
// believes the content is and is checked against it.
func (m *Module) PutAsset(ctx context.Context, userID, purpose, name, mimeType string, r io.Reader) (id, sniffed string, err error) {
	a, err := m.ingest(ctx, userID, purpose, name, mimeType, r)
	if err != nil {
		return "", "", fmt.Errorf("put asset: %w", err)
	}
	return a.ID, a.MIMEType, nil
}

// AssetType returns the media type of userID's asset id, or an error
// wrapping errs.ErrNotFound when userID has no such asset.
func (m *Module) AssetType(ctx context.Context, userID, id string) (string, error) {
	a, err := m.findOwned(ctx, userID, id)
	if err != nil {
		return "", err
	}
	return a.MIMEType, nil
}

// Describe returns the display name and media type of userID's asset id,
// or an error wrapping errs.ErrNotFound when userID has no such asset. It
// lets other modules reference an asset (a support attachment) without
// reading it.
func (m *Module) Describe(ctx context.Context, userID, id string) (name, mimeType string, err error) {
	a, err := m.findOwned(ctx, userID, id)
	if err != nil {
		return "", "", err
	}
	return a.FileName, a.MIMEType, nil
}

// OpenAsset opens the bytes of userID's asset id. The caller closes the
// reader.
func (m *Module) OpenAsset(ctx context.Context, userID, id string) (io.ReadCloser, string, error) {
	a, err := m.findOwned(ctx, userID, id)
	if err != nil {
		return nil, "", err
	}
	f, err := m.files.open(ctx, a.StoragePath)
	if err != nil {
		return nil, "", err
	}
	return f, a.MIMEType, nil
}
