package consent_test

import (
	"context"
	"reflect"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/sqlstore"
)

func reflectType(v any) reflect.Type { return reflect.TypeOf(v).Elem() }

func schemaColumns(db *bun.DB) ([]sqlstore.Column, error) {
	return sqlstore.Columns(context.Background(), db)
}
