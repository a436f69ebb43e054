package policies

import (
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"

	"github.com/stewardhq/steward/internal/locale"
)

// The policy's words for people: what each data category is, why it is
// kept, how long, what an erasure does to it and why an access export
// leaves it out, if it does, in every language the
// pages speak. The taxonomy (data/taxonomy.json) holds the English of each
// category, written as the record of processing ("the subject");
// locales/active.<tag>.toml holds the other languages, each text with the
// hash of the English it translates (TextHash), so a changed English text
// shows up as a stale translation in the tests rather than as a wrong
// page. The English file holds, hashed the same way, the category texts
// the person's own pages say to them in the second person ("you") instead
// of the taxonomy's. The same files hold the words that are not per
// category, in English too: purposes, legal bases, sections, retention
// periods.
//
//go:embed locales/active.*.toml
var localeFiles embed.FS

// englishFile is the English message file.
const englishFile = "locales/active.en.toml"

// Messages returns the policy's words as a source for a locale catalog:
// the message files, and the English category texts of tax that the
// English file does not reword. A reworded text stands only while its
// hash names the taxonomy's current text; a stale one gives way to the
// taxonomy's text, and TestTextsCoverTheTaxonomy names it.
func Messages(tax map[string]Category) locale.Source {
	reworded := englishMessages()
	var msgs []*i18n.Message
	for _, m := range CategoryMessages(tax) {
		if r := reworded[m.ID]; r != nil && r.Hash == m.Hash {
			continue
		}
		msgs = append(msgs, m)
	}
	return locale.Source{
		Files: localeFiles, Pattern: "locales/active.*.toml",
		Messages: map[language.Tag][]*i18n.Message{locale.Default: msgs},
	}
}

// englishMessages returns the messages of the English file by id; none
// when it does not parse, which loading the catalog reports.
func englishMessages() map[string]*i18n.Message {
	raw, err := localeFiles.ReadFile(englishFile)
	if err != nil {
		return nil
	}
	mf, err := i18n.ParseMessageFileBytes(raw, englishFile, map[string]i18n.UnmarshalFunc{"toml": toml.Unmarshal})
	if err != nil {
		return nil
	}
	out := make(map[string]*i18n.Message, len(mf.Messages))
	for _, m := range mf.Messages {
		out[m.ID] = m
	}
	return out
}

// The message ids of a category's texts, under "Category.<key>.".
const (
	TextName        = "Name"        // Category.Name
	TextDescription = "Description" // Category.Description
	TextWhy         = "Why"         // Category.LegalBasis.Reason
	TextErasure     = "Erasure"     // Category.Erasure.Reason
	TextWithheld    = "Withheld"    // Category.Export.WithheldReason
)

// CategoryTextID is the message id of one text of a category.
func CategoryTextID(key, text string) string {
	return "Category." + key + "." + text
}

// CategorySources returns the English texts of a personal category by
// text (TextName, ...); empty texts are left out, and so is the reason
// for withholding a category the export includes.
func CategorySources(c Category) map[string]string {
	out := map[string]string{}
	for text, s := range map[string]string{
		TextName: c.Name, TextDescription: c.Description, TextWhy: c.LegalBasis.Reason, TextErasure: c.Erasure.Reason,
		TextWithheld: withheldReason(c),
	} {
		if s != "" {
			out[text] = s
		}
	}
	return out
}

// CategoryMessages returns the English texts of every personal category
// of tax as messages, each with its TextHash.
func CategoryMessages(tax map[string]Category) []*i18n.Message {
	var out []*i18n.Message
	for key, c := range tax {
		if !c.Personal || c.Group {
			continue
		}
		for text, s := range CategorySources(c) {
			out = append(out, &i18n.Message{ID: CategoryTextID(key, text), Hash: TextHash(s), Other: s})
		}
	}
	return out
}

// TextHash identifies the English text a translation was made from:
// "sha1-" and the hex SHA-1 of its UTF-8 bytes, in go-i18n's hash field.
func TextHash(s string) string {
	sum := sha1.Sum([]byte(s))
	return "sha1-" + hex.EncodeToString(sum[:])
}

// Translator gives messages in one language; *locale.Localizer is one.
type Translator interface {
	T(id string, pairs ...any) string
	N(id string, count int, pairs ...any) string
}

// Words is a category in plain words, in one language.
type Words struct {
	Key         string
	Name        string
	Description string
	// Section is the privacy-policy section, by its title.
	Section string
	// Purposes say what the data is used for.
	Purposes []string
	// Basis names the legal basis; Article cites it; Why says why it
	// applies.
	Basis, Article, Why string
	// Consent is true when the basis is consent, which the person can
	// withdraw.
	Consent bool
	// Retention says how long the data is kept and what happens then.
	Retention string
	// ErasureAction is delete, anonymize or keep; Erasure says what an
	// erasure does in words, and ErasureWhy why.
	ErasureAction, Erasure, ErasureWhy string
	// Withheld says why an access export leaves the category out; empty
	// when the export includes it.
	Withheld string
}

// PlainWords describes the category c in t's language.
func PlainWords(t Translator, c Category) Words {
	w := Words{
		Key:         c.Key,
		Name:        t.T(CategoryTextID(c.Key, TextName)),
		Description: t.T(CategoryTextID(c.Key, TextDescription)),
		Section:     t.T("Section." + strconv.Itoa(c.Section.Number)),
		Basis:       t.T("Basis." + c.LegalBasis.Basis),
		Article:     c.LegalBasis.Article,
		Consent:     c.LegalBasis.Basis == BasisConsent,
		Retention:   RetentionWords(t, c.Retention.Duration, c.Retention.From, c.Retention.Action),
	}
	if c.LegalBasis.Reason != "" {
		w.Why = t.T(CategoryTextID(c.Key, TextWhy))
	}
	for _, p := range c.Purposes {
		w.Purposes = append(w.Purposes, t.T("Purpose."+p))
	}
	w.ErasureAction = c.Erasure.Action
	w.Erasure = t.T("Erasure." + c.Erasure.Action)
	if c.Erasure.Action != ActionDelete && c.Erasure.Until != "" {
		if period, from, ok := strings.Cut(c.Erasure.Until, " from "); ok {
			w.Erasure = t.T("Erasure.Until", "Until", RetentionWords(t, period, from, ""))
		}
	}
	if c.Erasure.Reason != "" {
		w.ErasureWhy = t.T(CategoryTextID(c.Key, TextErasure))
	}
	if withheldReason(c) != "" {
		w.Withheld = t.T(CategoryTextID(c.Key, TextWithheld))
	}
	return w
}

// withheldReason is the English of why an access export leaves c out,
// empty when the export includes it.
func withheldReason(c Category) string {
	if c.Export.Include {
		return ""
	}
	return c.Export.WithheldReason
}

// RetentionWords says a retention rule in words: "13 months after it is
// collected, then deleted". An empty action leaves out what happens then.
func RetentionWords(t Translator, duration, from, action string) string {
	if duration == DurationAccountLifetime {
		return t.T("Retention.AccountLifetime")
	}
	p, err := ParsePeriod(duration)
	if err != nil {
		return duration
	}
	var parts []string
	for _, u := range []struct {
		id string
		n  int
	}{{"Period.Years", p.Years}, {"Period.Months", p.Months}, {"Period.Days", p.Days}} {
		if u.n > 0 {
			parts = append(parts, t.N(u.id, u.n))
		}
	}
	s := t.T("Retention.From."+from, "Period", strings.Join(parts, " "))
	if action != "" {
		s += ", " + t.T("Retention.Then."+action)
	}
	return s
}
