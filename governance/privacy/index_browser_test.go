package privacy

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/stewardhq/steward/internal/testutil/browsertest"
)

// TestBrowserExportIndex opens the page of an access package in headless
// Chromium as a person does: unzipped into a folder and opened as a file,
// with no server and no network. The page passes axe-core with no
// violation in English and in German, shows its pictures from the
// package's files, and is saved as the screenshots export-index-en and
// export-index-de.
func TestBrowserExportIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	f := newIndexFixture(t)
	f.addPerson(t, ann)
	f.addPerson(t, bob)
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) {
			if _, err := f.db.NewUpdate().Table("users").Set("language = ?", lang).Where("id = ?", ann.id).Exec(t.Context()); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			for name, data := range f.index(t, ann) {
				p := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			page := browsertest.NewPage(t, 1280, 900, lang)
			index := (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(dir, "index.html"))}).String()
			page.Run("open the package's page", chromedp.Navigate(index), chromedp.WaitVisible("h1", chromedp.ByQuery))
			var loaded bool
			page.Eval("the pictures loaded", `[...document.images].length > 0 && [...document.images].every(i => i.complete && i.naturalWidth > 0)`, &loaded)
			if !loaded {
				t.Error("a picture of the package did not load")
			}
			// Open the first kind of data, so that the check and the
			// picture cover what a person reads when they open one.
			page.Eval("open a kind of data", `document.querySelector("details").open = true`, nil)
			page.CheckA11y("the package's page, " + lang)
			page.Screenshot("export-index-" + lang)
		})
	}
}
