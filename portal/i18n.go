package portal

import (
	"embed"

	"github.com/stewardhq/steward/internal/locale"
)

// localeFiles are the pages' message files, one per language:
// locales/active.<tag>.toml. English is the default and the fallback.
//
//go:embed locales/active.*.toml
var localeFiles embed.FS

// pageMessages is the pages' own source of messages.
var pageMessages = locale.Source{Files: localeFiles, Pattern: "locales/active.*.toml"}

// localizer gives the messages of one language to a page's templates.
type localizer = locale.Localizer

// loadCatalog reads the pages' message files and the extra sources (the
// policy's plain words).
func loadCatalog(extra ...locale.Source) (*locale.Catalog, error) {
	return locale.New(append([]locale.Source{pageMessages}, extra...)...)
}
