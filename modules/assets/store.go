package assets

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/errs"
)

// store holds every SQL statement of the module.
type store struct {
	db *bun.DB
}

func (s *store) insert(ctx context.Context, a *Asset) error {
	if _, err := s.db.NewInsert().Model(a).Exec(ctx); err != nil {
		return fmt.Errorf("insert asset: %w", err)
	}
	return nil
}

// asset returns the asset with id, whoever owns it.
func (s *store) asset(ctx context.Context, id string) (*Asset, error) {
	var a Asset
	err := s.db.NewSelect().Model(&a).Where("id = ?", id).Scan(ctx)
	return found(&a, id, err)
}

// ownedAsset returns the asset with id when userID owns it. Another user's
// asset is reported as missing, so ids cannot be probed.
func (s *store) ownedAsset(ctx context.Context, userID, id string) (*Asset, error) {
	var a Asset
	err := s.db.NewSelect().Model(&a).Where("id = ? AND user_id = ?", id, userID).Scan(ctx)
	return found(&a, id, err)
}

func found(a *Asset, id string, err error) (*Asset, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.Ef(errs.ErrNotFound, "There is no asset %s.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("select asset: %w", err)
	}
	return a, nil
}

// ofUser returns every asset of userID, the oldest first.
func (s *store) ofUser(ctx context.Context, userID string) ([]Asset, error) {
	var list []Asset
	if err := s.db.NewSelect().Model(&list).Where("user_id = ?", userID).Order("created_at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("select assets: %w", err)
	}
	return list, nil
}

func (s *store) delete(ctx context.Context, id string) error {
	if _, err := s.db.NewDelete().Model((*Asset)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("delete asset: %w", err)
	}
	return nil
}
