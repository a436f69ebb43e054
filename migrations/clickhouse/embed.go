// Package chmigrations provides the ClickHouse schema of the analytics
// warehouse as golang-migrate files, embedded so the binary migrates both the
// embedded engine and a ClickHouse server from the same SQL.
//
// Every column carries COMMENT '<data category>', and a column that
// identifies the data subject carries COMMENT '<data category>,subject=<kind>'
// (user or visitor), so the data map can be read from the migrated schema
// itself.
package chmigrations

import "embed"

// FS holds the numbered *.up.sql and *.down.sql files.
//
//go:embed *.sql
var FS embed.FS
