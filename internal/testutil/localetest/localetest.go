// Package localetest checks message files the way every package that has
// some needs: each language holds exactly the English file's messages,
// none empty.
package localetest

import (
	"io/fs"
	"slices"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
)

// English is the name of the English file among the files checked.
const English = "locales/active.en.toml"

// IDs reads the message ids of one file in fsys, failing the test on a
// file that does not parse and reporting any empty message.
func IDs(t testing.TB, fsys fs.FS, name string) map[string]bool {
	t.Helper()
	raw, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := i18n.ParseMessageFileBytes(raw, name, map[string]i18n.UnmarshalFunc{"toml": toml.Unmarshal})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ids := map[string]bool{}
	for _, m := range mf.Messages {
		if m.Other == "" {
			t.Errorf("%s: message %s is empty", name, m.ID)
		}
		ids[m.ID] = true
	}
	return ids
}

// FilesMatch checks that fsys has English and at least one more language
// under locales/active.*.toml, and that every file holds exactly the
// English file's message ids. It returns the English ids.
func FilesMatch(t testing.TB, fsys fs.FS) map[string]bool {
	t.Helper()
	files, err := fs.Glob(fsys, "locales/active.*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 || !slices.Contains(files, English) {
		t.Fatalf("message files %v, want English and at least one more", files)
	}
	en := IDs(t, fsys, English)
	for _, f := range files {
		ids := IDs(t, fsys, f)
		for id := range en {
			if !ids[id] {
				t.Errorf("%s lacks %s", f, id)
			}
		}
		for id := range ids {
			if !en[id] {
				t.Errorf("%s has %s, which English lacks", f, id)
			}
		}
	}
	return en
}
