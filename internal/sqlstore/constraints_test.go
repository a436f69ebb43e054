package sqlstore_test

import (
	"slices"
	"testing"

	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// keysSchema is a small schema with foreign keys, unique constraints, a
// partial unique index, one over two columns and an index that is not
// unique, among names that are reserved words, and golang-migrate's
// version table, which is none of the application's.
var keysSchema = []string{
	`CREATE TABLE ` + sqlstore.Quote(sqlstore.MigrationsTable) + ` (version BIGINT PRIMARY KEY, dirty BOOLEAN NOT NULL)`,
	`CREATE TABLE account (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, handle TEXT)`,
	`CREATE UNIQUE INDEX account_handle ON account (handle) WHERE handle IS NOT NULL`,
	`CREATE TABLE "order" (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES account (id), "group" TEXT, number TEXT NOT NULL)`,
	`CREATE UNIQUE INDEX order_group_number ON "order" ("group", number)`,
	`CREATE INDEX order_account ON "order" (account_id)`,
	`CREATE TABLE line (order_id TEXT NOT NULL REFERENCES "order" (id), payer_id TEXT REFERENCES account (id), n INTEGER NOT NULL)`,
}

// TestSchemaKeys reads the foreign keys and unique indexes of keysSchema
// on both dialects. The database names primary keys and UNIQUE
// constraints itself, each dialect its own way.
func TestSchemaKeys(t *testing.T) {
	tests := []struct {
		dialect string
		unique  []sqlstore.UniqueIndex
	}{
		{dialect: sqlstore.SQLite, unique: []sqlstore.UniqueIndex{
			{Table: "account", Column: "email", Index: "sqlite_autoindex_account_2"},
			{Table: "account", Column: "handle", Index: "account_handle"},
			{Table: "account", Column: "id", Index: "sqlite_autoindex_account_1"},
			{Table: "order", Column: "group", Index: "order_group_number"},
			{Table: "order", Column: "id", Index: "sqlite_autoindex_order_1"},
			{Table: "order", Column: "number", Index: "order_group_number"},
		}},
		{dialect: sqlstore.Postgres, unique: []sqlstore.UniqueIndex{
			{Table: "account", Column: "email", Index: "account_email_key"},
			{Table: "account", Column: "handle", Index: "account_handle"},
			{Table: "account", Column: "id", Index: "account_pkey"},
			{Table: "order", Column: "group", Index: "order_group_number"},
			{Table: "order", Column: "id", Index: "order_pkey"},
			{Table: "order", Column: "number", Index: "order_group_number"},
		}},
	}
	wantFKs := []sqlstore.ForeignKey{
		{Table: "line", Column: "order_id", References: "order"},
		{Table: "line", Column: "payer_id", References: "account"},
		{Table: "order", Column: "account_id", References: "account"},
	}
	for _, tt := range tests {
		t.Run(tt.dialect, func(t *testing.T) {
			db := sqltest.OpenEmpty(t, tt.dialect)
			for _, q := range keysSchema {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatal(err)
				}
			}
			fks, err := sqlstore.ForeignKeys(t.Context(), db)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(fks, wantFKs) {
				t.Errorf("foreign keys:\n%v\nwant:\n%v", fks, wantFKs)
			}
			unique, err := sqlstore.UniqueIndexes(t.Context(), db)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(unique, tt.unique) {
				t.Errorf("unique indexes:\n%v\nwant:\n%v", unique, tt.unique)
			}
		})
	}
}
