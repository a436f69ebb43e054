package assets

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/stewardhq/steward/internal/module"
)

// ExportSubject implements module.SubjectData: it adds the bytes of every
// asset of the subject to the export, each under its id and sanitized
// name. The rows themselves are exported from the data map.
func (m *Module) ExportSubject(ctx context.Context, subject module.SubjectRef, w module.ExportWriter) error {
	if subject.UserID == "" {
		return nil
	}
	list, err := m.store.ofUser(ctx, subject.UserID)
	if err != nil {
		return fmt.Errorf("export assets: %w", err)
	}
	for i := range list {
		a := &list[i]
		f, err := m.files.open(ctx, a.StoragePath)
		if errors.Is(err, fs.ErrNotExist) {
			// Bytes already gone (an erasure in progress) leave only the
			// row, which the data map exports.
			continue
		}
		if err != nil {
			return fmt.Errorf("export asset %s: %w", a.ID, err)
		}
		err = w.File(ctx, path.Join(a.Purpose, a.ID+"-"+a.FileName), a.contentCategory(), f)
		f.Close()
		if err != nil {
			return fmt.Errorf("export asset %s: %w", a.ID, err)
		}
	}
	return nil
}

// EraseSubject implements module.SubjectData: it removes the folder
// holding every file of the subject (originals and previews). It reads no
// rows, so it works, and can be retried, whether or not the governance
// package has already deleted them. Both categories of bytes are deleted on
// erasure by the taxonomy's rules.
func (m *Module) EraseSubject(ctx context.Context, subject module.SubjectRef) (module.ErasureResult, error) {
	if subject.UserID == "" {
		return module.ErasureResult{}, nil
	}
	dir := userDir(subject.UserID)
	n, err := m.files.countDirs(ctx, dir)
	if err != nil {
		return module.ErasureResult{}, err
	}
	if err := m.files.removeAll(ctx, dir); err != nil {
		return module.ErasureResult{}, err
	}
	if err := ctxErr(ctx); err != nil {
		return module.ErasureResult{}, err
	}
	return module.ErasureResult{Deleted: n}, nil
}
