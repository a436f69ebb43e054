package assets

import (
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/datamaptest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// TestEveryColumnTagged reads the migrated schema of both stores and checks
// that every column of the module's tables is tagged with a known category
// and that each table marks its subject column.
func TestEveryColumnTagged(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		f := newFixture(t, db, Config{})
		src := datamap.Source{Module: f.mod.Name(), Models: f.mod.Models()}
		datamaptest.EveryColumnTagged(t, db, authtest.Engine(t), src, "assets")
	})
}
