package policies

import (
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"

	"github.com/stewardhq/steward/internal/locale"
)

// textFile reads one of the policy's message files, by id.
func textFile(t *testing.T, name string) map[string]*i18n.Message {
	t.Helper()
	raw, err := localeFiles.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := i18n.ParseMessageFileBytes(raw, name, map[string]i18n.UnmarshalFunc{"toml": toml.Unmarshal})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out := map[string]*i18n.Message{}
	for _, m := range mf.Messages {
		if m.Other == "" {
			t.Errorf("%s: %s is empty", name, m.ID)
		}
		out[m.ID] = m
	}
	return out
}

// wantedTexts lists every message id the policy's words need: up to five per
// personal category, one per purpose, legal basis and section the
// taxonomy uses, one per retention start, and the fixed ones.
func wantedTexts(tax map[string]Category) (category, other map[string]string) {
	category, other = map[string]string{}, map[string]string{}
	for _, id := range []string{"Retention.AccountLifetime", "Period.Days", "Period.Months", "Period.Years", "Erasure.Until"} {
		other[id] = ""
	}
	// Any start a rule may count from, used or not: the list is closed.
	for _, from := range retentionStarts {
		other["Retention.From."+from] = ""
	}
	for key, c := range tax {
		if !c.Personal || c.Group {
			continue
		}
		for text, s := range CategorySources(c) {
			category[CategoryTextID(key, text)] = s
		}
		for _, p := range c.Purposes {
			other["Purpose."+p] = ""
		}
		other["Basis."+c.LegalBasis.Basis] = ""
		other["Section."+strconv.Itoa(c.Section.Number)] = ""
		if c.Retention.Duration != DurationAccountLifetime {
			other["Retention.From."+c.Retention.From] = ""
		}
		other["Retention.Then."+c.Retention.Action] = ""
		other["Erasure."+c.Erasure.Action] = ""
		if _, from, ok := strings.Cut(c.Erasure.Until, " from "); ok {
			other["Retention.From."+from] = ""
		}
	}
	return category, other
}

// TestTextsCoverTheTaxonomy checks that every language has the words for
// every personal category, purpose, basis, section and retention rule the
// taxonomy uses, and nothing else; and that each translated category text
// translates the English the taxonomy holds now: its hash names the
// English it was made from, so a changed English text fails here until
// the translation follows. English needs no category texts, the
// taxonomy's stand; a text the English file rewords for the reader is
// held to the same hash, and is what the English pages show.
func TestTextsCoverTheTaxonomy(t *testing.T) {
	e := newEngine(t, Options{})
	tax := e.Taxonomy()
	category, other := wantedTexts(tax)
	cat, err := locale.New(Messages(tax))
	if err != nil {
		t.Fatal(err)
	}
	shown := cat.For("en")
	files, err := fs.Glob(localeFiles, "locales/active.*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, englishFile) || len(files) < 2 {
		t.Fatalf("message files %v, want English and at least one more", files)
	}
	for _, f := range files {
		msgs := textFile(t, f)
		english := f == englishFile
		for id := range other {
			if msgs[id] == nil {
				t.Errorf("%s lacks %s", f, id)
			}
		}
		for id, src := range category {
			m := msgs[id]
			switch {
			case english && m == nil:
				// The taxonomy's English stands.
			case m == nil:
				t.Errorf("%s lacks %s (English: %q)", f, id, src)
			case english && m.Hash != TextHash(src):
				t.Errorf("%s: %s rewords an older English text; reword %q again and set its hash to %s", f, id, src, TextHash(src))
			case m.Hash != TextHash(src):
				t.Errorf("%s: %s translates an older English text; translate %q again and set its hash to %s", f, id, src, TextHash(src))
			case english:
				if got := shown.T(id); got != m.Other {
					t.Errorf("English pages show %s as %q, want the file's %q", id, got, m.Other)
				}
			}
		}
		var extra []string
		for id := range msgs {
			if _, ok := other[id]; ok {
				continue
			}
			if _, ok := category[id]; ok {
				continue
			}
			extra = append(extra, id)
		}
		sort.Strings(extra)
		if len(extra) > 0 {
			t.Errorf("%s has texts nothing uses: %v", f, extra)
		}
	}
}

// TestPlainWords checks a category in words, in English and German, with
// its retention and erasure said in the reader's language, and its texts
// said to the reader where the English file rewords the taxonomy's.
func TestPlainWords(t *testing.T) {
	e := newEngine(t, Options{})
	tax := e.Taxonomy()
	cat, err := locale.New(Messages(tax))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lang, key string
		want      Words
	}{
		{"en", "user.behavior.attribution.utm", Words{
			Name: "UTM parameters", Basis: "Your consent", Article: "GDPR Art. 6(1)(a)", Consent: true,
			Retention: "13 months after it is collected, then deleted", ErasureAction: ActionDelete, Erasure: "Deleted",
		}},
		{"de", "user.behavior.attribution.utm", Words{
			Name: "UTM-Parameter", Basis: "Ihre Einwilligung", Article: "GDPR Art. 6(1)(a)", Consent: true,
			Retention: "13 Monate nach der Erhebung, danach gelöscht", ErasureAction: ActionDelete, Erasure: "Gelöscht",
		}},
		{"en", "user.content.prompt", Words{
			Name: "Prompt", Basis: "Needed for our contract with you", Article: "GDPR Art. 6(1)(b)",
			Retention: "As long as you have an account", ErasureAction: ActionDelete, Erasure: "Deleted",
			// Reworded in active.en.toml; the taxonomy says "the subject".
			Description: "The text you write to describe the image or video to generate.",
			Why:         "Needed to produce and keep the generations you ask for.",
			ErasureWhy:  "Deleted with your account or when you request erasure.",
		}},
		{"en", "user.financial.invoice_id", Words{
			Name: "Invoice ID", Basis: "A legal obligation", Article: "GDPR Art. 6(1)(c)",
			Retention: "10 years after the order is paid, then deleted", ErasureAction: ActionKeep,
			Erasure: "Kept until 10 years after the order is paid",
			// Not reworded: the taxonomy's English.
			Description: "The invoice number issued by the payment provider.",
		}},
		{"de-CH", "user.consent.record", Words{
			Name: "Einwilligungsnachweis", Basis: "Eine rechtliche Verpflichtung", Article: "GDPR Art. 6(1)(c)",
			Retention: "3 Jahre nach Ablösung durch eine neuere Entscheidung, danach gelöscht", ErasureAction: ActionAnonymize,
			Erasure: "Aufbewahrt bis 3 Jahre nach Ablösung durch eine neuere Entscheidung",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.lang+"/"+tt.key, func(t *testing.T) {
			c, ok := tax[tt.key]
			if !ok {
				t.Fatalf("no category %s", tt.key)
			}
			l := cat.Match(tt.lang)
			got := PlainWords(l, c)
			if got.Name != tt.want.Name || got.Basis != tt.want.Basis || got.Article != tt.want.Article ||
				got.Consent != tt.want.Consent || got.Retention != tt.want.Retention ||
				got.ErasureAction != tt.want.ErasureAction || got.Erasure != tt.want.Erasure {
				t.Errorf("PlainWords = %+v\nwant        %+v", got, tt.want)
			}
			for _, text := range []struct{ name, got, want string }{
				{"Description", got.Description, tt.want.Description},
				{"Why", got.Why, tt.want.Why},
				{"ErasureWhy", got.ErasureWhy, tt.want.ErasureWhy},
			} {
				if text.want != "" && text.got != text.want {
					t.Errorf("PlainWords %s = %q, want %q", text.name, text.got, text.want)
				}
			}
			if got.Description == "" || got.Why == "" || got.ErasureWhy == "" || len(got.Purposes) == 0 {
				t.Errorf("PlainWords left texts empty: %+v", got)
			}
			if missing := l.Missing(); len(missing) > 0 {
				t.Errorf("messages missing: %v", missing)
			}
		})
	}
}

// TestPlainWordsWithheld checks why the export leaves a category out, in
// English and German, and that an exported category has no such reason.
func TestPlainWordsWithheld(t *testing.T) {
	e := newEngine(t, Options{})
	tax := e.Taxonomy()
	cat, err := locale.New(Messages(tax))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, lang, key, want string
	}{
		{"withheld, English", "en", "user.content.upload.storage_path", tax["user.content.upload.storage_path"].Export.WithheldReason},
		{"withheld, German", "de", "user.content.upload.storage_path", "Ein interner Ort in unserem Dateispeicher; der Export enthält die Datei selbst, daher sagt Ihnen der Pfad nichts und würde den Aufbau unseres Speichers offenlegen."},
		{"exported", "de", "user.content.prompt", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := cat.Match(tt.lang)
			if got := PlainWords(l, tax[tt.key]).Withheld; got != tt.want || tt.want == "" && got != "" {
				t.Errorf("Withheld = %q, want %q", got, tt.want)
			}
			if missing := l.Missing(); len(missing) > 0 {
				t.Errorf("messages missing: %v", missing)
			}
		})
	}
}

// TestStaleEnglishTextGivesWay checks that a text the English file
// rewords is not shown once the taxonomy's text changes: its hash no
// longer matches, so the pages say the taxonomy's new text until the
// English file follows (and TestTextsCoverTheTaxonomy fails meanwhile).
func TestStaleEnglishTextGivesWay(t *testing.T) {
	e := newEngine(t, Options{})
	tax := map[string]Category{}
	for k, c := range e.Taxonomy() {
		tax[k] = c
	}
	const key = "user.content.prompt"
	c := tax[key]
	c.LegalBasis.Reason = "Needed to produce the generations the subject asks for."
	tax[key] = c
	cat, err := locale.New(Messages(tax))
	if err != nil {
		t.Fatal(err)
	}
	got := PlainWords(cat.For("en"), c)
	if got.Why != c.LegalBasis.Reason {
		t.Errorf("Why = %q, want the taxonomy's changed text %q", got.Why, c.LegalBasis.Reason)
	}
	if want := "Deleted with your account or when you request erasure."; got.ErasureWhy != want {
		t.Errorf("ErasureWhy = %q, want the unchanged rewording %q", got.ErasureWhy, want)
	}
}
