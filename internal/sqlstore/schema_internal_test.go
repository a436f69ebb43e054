package sqlstore

import "testing"

func TestTypeFamily(t *testing.T) {
	tests := []struct {
		name    string
		dialect string
		sqlType string
		want    string
	}{
		{name: "sqlite text", dialect: SQLite, sqlType: "TEXT", want: FamilyText},
		{name: "postgres text", dialect: Postgres, sqlType: "text", want: FamilyText},
		{name: "postgres varchar", dialect: Postgres, sqlType: "character varying", want: FamilyText},
		{name: "sqlite varchar with length", dialect: SQLite, sqlType: "VARCHAR(64)", want: FamilyText},
		{name: "sqlite bigint", dialect: SQLite, sqlType: "BIGINT", want: FamilyInteger},
		{name: "sqlite integer", dialect: SQLite, sqlType: "INTEGER", want: FamilyInteger},
		{name: "postgres bigint", dialect: Postgres, sqlType: "bigint", want: FamilyInteger},
		{name: "sqlite boolean", dialect: SQLite, sqlType: "BOOLEAN", want: FamilyBoolean},
		{name: "postgres boolean", dialect: Postgres, sqlType: "boolean", want: FamilyBoolean},
		{name: "sqlite timestamptz", dialect: SQLite, sqlType: "TIMESTAMPTZ", want: FamilyTime},
		{name: "sqlite timestamp holds zoned text", dialect: SQLite, sqlType: "TIMESTAMP", want: FamilyTime},
		{name: "sqlite datetime", dialect: SQLite, sqlType: "DATETIME", want: FamilyTime},
		{name: "postgres timestamptz", dialect: Postgres, sqlType: "timestamp with time zone", want: FamilyTime},
		{name: "postgres timestamp without zone", dialect: Postgres, sqlType: "timestamp without time zone", want: FamilyNaiveTime},
		{name: "postgres jsonb", dialect: Postgres, sqlType: "jsonb", want: FamilyJSON},
		{name: "postgres double", dialect: Postgres, sqlType: "double precision", want: FamilyFloat},
		{name: "sqlite real", dialect: SQLite, sqlType: "REAL", want: FamilyFloat},
		{name: "postgres numeric", dialect: Postgres, sqlType: "numeric", want: FamilyDecimal},
		{name: "postgres bytea", dialect: Postgres, sqlType: "bytea", want: FamilyBytes},
		{name: "sqlite blob", dialect: SQLite, sqlType: "BLOB", want: FamilyBytes},
		{name: "unknown type is its own family", dialect: Postgres, sqlType: "uuid", want: "uuid"},
		{name: "unknown type ignores case", dialect: SQLite, sqlType: "UUID", want: "uuid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := typeFamily(tt.dialect, tt.sqlType); got != tt.want {
				t.Errorf("typeFamily(%s, %q) = %q, want %q", tt.dialect, tt.sqlType, got, tt.want)
			}
		})
	}
}
