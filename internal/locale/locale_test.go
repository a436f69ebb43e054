package locale_test

import (
	"testing"
	"testing/fstest"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"

	"github.com/stewardhq/steward/internal/locale"
)

func TestCatalog(t *testing.T) {
	files := fstest.MapFS{
		"m/active.en.toml": {Data: []byte("Hello = \"Hello, {{.Name}}\"\n\"Period.Days\" = { one = \"{{.Count}} day\", other = \"{{.Count}} days\" }\n")},
		"m/active.de.toml": {Data: []byte("Hello = \"Hallo, {{.Name}}\"\n\"Period.Days\" = { one = \"{{.Count}} Tag\", other = \"{{.Count}} Tage\" }\n")},
	}
	c, err := locale.New(
		locale.Source{Files: files, Pattern: "m/active.*.toml"},
		locale.Source{Messages: map[language.Tag][]*i18n.Message{language.English: {{ID: "OnlyEnglish", Other: "Only in English"}}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		l    *locale.Localizer
		lang string
		id   string
		n    int
		want string
	}{
		{"accept-language picks German", c.Match("de-CH,de;q=0.9,en;q=0.5"), "de", "Hello", -1, "Hallo, Ann"},
		{"an unknown language falls back to English", c.Match("fr"), "en", "Hello", -1, "Hello, Ann"},
		{"an empty header is English", c.Match(""), "en", "Hello", -1, "Hello, Ann"},
		{"an account's language", c.For("de"), "de", "Hello", -1, "Hallo, Ann"},
		{"a malformed language tag is English", c.For("!!"), "en", "Hello", -1, "Hello, Ann"},
		{"one, in German", c.For("de"), "de", "Period.Days", 1, "1 Tag"},
		{"many, in German", c.For("de"), "de", "Period.Days", 30, "30 Tage"},
		{"one, in English", c.For("en"), "en", "Period.Days", 1, "1 day"},
		{"a message only English has", c.For("de"), "de", "OnlyEnglish", -1, "Only in English"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			if tt.n >= 0 {
				got = tt.l.N(tt.id, tt.n)
			} else {
				got = tt.l.T(tt.id, "Name", "Ann")
			}
			if got != tt.want || tt.l.Lang() != tt.lang {
				t.Errorf("%s in %s = %q, want %q in %s", tt.id, tt.l.Lang(), got, tt.want, tt.lang)
			}
			if m := tt.l.Missing(); len(m) > 0 {
				t.Errorf("missing %v", m)
			}
		})
	}
	l := c.For("de")
	if got := l.T("Nowhere"); got != "Nowhere" || len(l.Missing()) != 1 {
		t.Errorf("a message no language has: %q, missing %v", got, l.Missing())
	}
}
