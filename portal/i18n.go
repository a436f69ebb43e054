package portal

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"sync"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

// localeFiles are the message files, one per language:
// locales/active.<tag>.toml. English is the default and the fallback.
//
//go:embed locales/active.*.toml
var localeFiles embed.FS

// defaultLanguage is the language of a visitor whose Accept-Language
// matches none of the files, and of any message a file lacks.
var defaultLanguage = language.English

// catalog holds every language's messages.
type catalog struct {
	bundle *i18n.Bundle
	// tags are the languages, the default first; matcher picks among them.
	tags    []language.Tag
	matcher language.Matcher
}

// loadCatalog reads the embedded message files.
func loadCatalog() (*catalog, error) {
	b := i18n.NewBundle(defaultLanguage)
	b.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	files, err := fs.Glob(localeFiles, "locales/active.*.toml")
	if err != nil {
		return nil, fmt.Errorf("list message files: %w", err)
	}
	sort.Strings(files)
	for _, f := range files {
		if _, err := b.LoadMessageFileFS(localeFiles, f); err != nil {
			return nil, fmt.Errorf("load message file %s: %w", f, err)
		}
	}
	// LanguageTags lists the default language first, so the matcher falls
	// back to it.
	tags := b.LanguageTags()
	return &catalog{bundle: b, tags: tags, matcher: language.NewMatcher(tags)}, nil
}

// localizer returns the messages in the language of an Accept-Language
// header, English when none of its languages has a file.
func (c *catalog) localizer(acceptLanguage string) *localizer {
	prefs, _, _ := language.ParseAcceptLanguage(acceptLanguage)
	_, i, conf := c.matcher.Match(prefs...)
	tag := c.tags[0]
	if conf != language.No {
		tag = c.tags[i]
	}
	return &localizer{tag: tag, l: i18n.NewLocalizer(c.bundle, tag.String())}
}

// localizer gives the messages of one language to a page's templates.
type localizer struct {
	tag language.Tag
	l   *i18n.Localizer

	mu      sync.Mutex
	missing []string
}

// Lang is the BCP 47 tag of the page's language, for <html lang>.
func (l *localizer) Lang() string { return l.tag.String() }

// T returns the message id, filled with data given as name and value
// pairs ("Name", "Ann"). A message missing from the language's file falls
// back to English; one missing everywhere shows its id and is recorded,
// so tests and the log catch it.
func (l *localizer) T(id string, pairs ...any) string {
	var data map[string]any
	if len(pairs) > 0 {
		data = make(map[string]any, len(pairs)/2)
		for i := 0; i+1 < len(pairs); i += 2 {
			data[fmt.Sprint(pairs[i])] = pairs[i+1]
		}
	}
	s, err := l.l.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
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

// Missing returns the ids T could not find in any language.
func (l *localizer) Missing() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.missing...)
}
