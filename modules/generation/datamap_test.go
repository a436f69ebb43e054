package generation

import (
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/testutil/datamaptest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

// TestEveryColumnTagged reads the migrated schema of both stores and checks
// that every column of the module's tables is tagged with a known category
// and that each table marks its subject column.
func TestEveryColumnTagged(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		f := newFixture(t, db, fixtureOpts{noStart: true})
		src := datamap.Source{Module: f.gen.Name(), Models: f.gen.Models()}
		datamaptest.EveryColumnTagged(t, db, testEngine(t), src,
			"projects", "generations", "generation_outputs", "prompt_safety_results")
	})
}
