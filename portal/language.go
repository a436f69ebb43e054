package portal

import (
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
)

// cookieLanguage remembers the language a person picked with the
// switcher. It holds a language tag and nothing else, is set only when
// they pick one, and is as necessary as the page they asked for in it.
const cookieLanguage = "steward_lang"

// pathLanguage is the switcher's route.
const pathLanguage = "/language"

// languageFor picks a page's language: the one picked with the switcher,
// else the signed-in account's, else the best match of Accept-Language;
// English when none of them is a language of the pages.
func (p *Portal) languageFor(c *fiber.Ctx, acc *Account) *localizer {
	for _, tag := range []string{c.Cookies(cookieLanguage), accountLanguage(acc)} {
		if tag == "" {
			continue
		}
		if l := p.catalog.For(tag); sameLanguage(l.Tag(), tag) {
			return l
		}
	}
	return p.catalog.Match(c.Get(fiber.HeaderAcceptLanguage))
}

func accountLanguage(acc *Account) string {
	if acc == nil {
		return ""
	}
	return acc.Language
}

// sameLanguage reports whether tag names the language t is in (de-CH
// picks German; fr, for which there is no file, does not).
func sameLanguage(t language.Tag, tag string) bool {
	want, err := language.Parse(tag)
	if err != nil {
		return false
	}
	a, _ := t.Base()
	b, _ := want.Base()
	return a == b
}

// languageChoice is one entry of the switcher.
type languageChoice struct {
	Tag, Name, Href string
	Current         bool
}

// languageChoices lists the pages' languages, each named in itself, with
// a link back to the page the person is on.
func (p *Portal) languageChoices(c *fiber.Ctx, l *localizer) []languageChoice {
	back := c.OriginalURL()
	var out []languageChoice
	for _, t := range p.catalog.Languages() {
		q := url.Values{"to": {t.String()}, "back": {back}}
		out = append(out, languageChoice{
			Tag: t.String(), Name: titleCase(display.Self.Name(t)), Href: pathLanguage + "?" + q.Encode(),
			Current: t == l.Tag(),
		})
	}
	return out
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// mountLanguage adds the switcher's route.
func (p *Portal) mountLanguage(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathLanguage, Tag: tag,
		Summary: "Switch the pages' language, then go back to the page",
		Description: "`to` is a language of the pages (`en`, `de`); `back` a path of this site. Sets the " +
			"`steward_lang` cookie, which holds the language tag only, and answers `303` to `back` (or `/`).",
		Responses: map[int]any{303: nil, 400: nil},
	}, p.switchLanguage)
}

func (p *Portal) switchLanguage(c *fiber.Ctx) error {
	to := c.Query("to")
	l := p.catalog.For(to)
	if to == "" || !sameLanguage(l.Tag(), to) {
		return errs.Invalid("to", "enum", "Must be a language of the pages.")
	}
	c.Cookie(&fiber.Cookie{
		Name: cookieLanguage, Value: l.Lang(), Path: "/",
		Expires: p.now().Add(365 * 24 * time.Hour), MaxAge: 365 * 24 * 3600,
		Secure: strings.HasPrefix(p.cfg.BaseURL, "https://"), HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode,
	})
	return c.Redirect(localPath(c.Query("back")), fiber.StatusSeeOther)
}

// localPath returns back when it is a path of this site, "/" otherwise,
// so the switcher never sends anyone elsewhere.
func localPath(back string) string {
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || strings.HasPrefix(back, "/\\") {
		return "/"
	}
	u, err := url.Parse(back)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return back
}
