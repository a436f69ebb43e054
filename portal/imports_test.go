package portal

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportsNoModule keeps the portal below the modules: it reads them
// through Deps, which cmd/steward fills, and never imports one.
func TestImportsNoModule(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	const self = "github.com/stewardhq/steward/"
	for _, imp := range pkg.Imports {
		for _, banned := range []string{"modules/", "consent", "analytics/", "governance/", "cmd/"} {
			if strings.HasPrefix(imp, self+banned) {
				t.Errorf("portal imports %s", imp)
			}
		}
	}
}
