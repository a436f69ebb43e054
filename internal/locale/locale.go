// Package locale holds the messages Steward shows people, in every
// language it speaks, and picks the language of a request.
//
// Messages live in go-i18n message files (TOML), one per language and
// source: the pages' own (portal/locales) and the policy's plain words for
// data categories, purposes and retention (policies/locales). A source may
// also add messages built from data, as the policy's English category
// texts are built from its taxonomy. English is the default language and
// the fallback for any message another language lacks.
package locale

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"sync"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

// Default is the language of a request whose Accept-Language matches none
// of the catalog's, and of any message a language lacks.
var Default = language.English

// Source is one set of messages: files matching Pattern in Files
// (go-i18n's naming, <anything>.<tag>.toml), and messages given as data.
type Source struct {
	Files   fs.FS
	Pattern string
	// Messages are added per language after the files.
	Messages map[language.Tag][]*i18n.Message
}

// Catalog holds every language's messages.
type Catalog struct {
	bundle *i18n.Bundle
	// tags are the languages, the default first; matcher picks among them.
	tags    []language.Tag
	matcher language.Matcher
}

// New reads the sources into one catalog.
func New(sources ...Source) (*Catalog, error) {
	b := i18n.NewBundle(Default)
	b.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	for _, s := range sources {
		if s.Files != nil {
			files, err := fs.Glob(s.Files, s.Pattern)
			if err != nil {
				return nil, fmt.Errorf("list message files %s: %w", s.Pattern, err)
			}
			sort.Strings(files)
			for _, f := range files {
				if _, err := b.LoadMessageFileFS(s.Files, f); err != nil {
					return nil, fmt.Errorf("load message file %s: %w", f, err)
				}
			}
		}
		tags := make([]language.Tag, 0, len(s.Messages))
		for t := range s.Messages {
			tags = append(tags, t)
		}
		sort.Slice(tags, func(i, j int) bool { return tags[i].String() < tags[j].String() })
		for _, t := range tags {
			if err := b.AddMessages(t, s.Messages[t]...); err != nil {
				return nil, fmt.Errorf("add %s messages: %w", t, err)
			}
		}
	}
	// LanguageTags lists the default language first, so the matcher falls
	// back to it.
	tags := b.LanguageTags()
	return &Catalog{bundle: b, tags: tags, matcher: language.NewMatcher(tags)}, nil
}

// Languages returns the catalog's languages, the default first.
func (c *Catalog) Languages() []language.Tag {
	return append([]language.Tag(nil), c.tags...)
}

// Match returns the messages in the best match of an Accept-Language
// header (so de-CH gets German), the default language when none matches.
func (c *Catalog) Match(acceptLanguage string) *Localizer {
	prefs, _, _ := language.ParseAcceptLanguage(acceptLanguage)
	return c.pick(prefs)
}

// For returns the messages in the best match of one language tag, such as
// an account's stored language; the default language when none matches.
func (c *Catalog) For(tag string) *Localizer {
	t, err := language.Parse(tag)
	if err != nil {
		return c.pick(nil)
	}
	return c.pick([]language.Tag{t})
}

func (c *Catalog) pick(prefs []language.Tag) *Localizer {
	tag := c.tags[0]
	if len(prefs) > 0 {
		if _, i, conf := c.matcher.Match(prefs...); conf != language.No {
			tag = c.tags[i]
		}
	}
	return &Localizer{tag: tag, l: i18n.NewLocalizer(c.bundle, tag.String())}
}

// Localizer gives the messages of one language.
type Localizer struct {
	tag language.Tag
	l   *i18n.Localizer

	mu      sync.Mutex
	missing []string
}

// Lang is the BCP 47 tag of the language, for <html lang>.
func (l *Localizer) Lang() string { return l.tag.String() }

// Tag is the language.
func (l *Localizer) Tag() language.Tag { return l.tag }

// T returns the message id, filled with data given as name and value
// pairs ("Name", "Ann"). A message missing from the language falls back
// to English; one missing everywhere shows its id and is recorded, so
// tests and the log catch it.
func (l *Localizer) T(id string, pairs ...any) string {
	return l.localize(id, nil, pairs)
}

// N is T for a message with plural forms, chosen by count under the
// language's CLDR rules; the message sees count as {{.Count}}.
func (l *Localizer) N(id string, count int, pairs ...any) string {
	return l.localize(id, count, append([]any{"Count", count}, pairs...))
}

func (l *Localizer) localize(id string, count any, pairs []any) string {
	var data map[string]any
	if len(pairs) > 0 {
		data = make(map[string]any, len(pairs)/2)
		for i := 0; i+1 < len(pairs); i += 2 {
			data[fmt.Sprint(pairs[i])] = pairs[i+1]
		}
	}
	s, err := l.l.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data, PluralCount: count})
	var fellBack *i18n.MessageNotFoundErr
	if err != nil && (s == "" || !errors.As(err, &fellBack)) {
		l.mu.Lock()
		l.missing = append(l.missing, id)
		l.mu.Unlock()
	}
	if s == "" {
		return id
	}
	return s
}

// Missing returns the ids T and N could not find in any language.
func (l *Localizer) Missing() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.missing...)
}
