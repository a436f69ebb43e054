// Package portal provides Steward's pages for people: the entry page at /
// (sign-in, and who you are with links by role), and the foundation the
// privacy center (/privacy) and the console (/console) build on.
//
// Pages are rendered on the server with html/template from templates
// embedded in the binary, with the stylesheet and icons served from
// /static/ out of the same binary; no page loads anything from another
// origin except Google's sign-in script on the sign-in page, and only
// when Google sign-in is configured. Every page answers with a strict
// Content-Security-Policy that allows no inline script and no inline
// style (see contentSecurityPolicy). Every core flow is a plain link or
// <form>, so it works with JavaScript turned off.
//
// Messages live in one TOML file per language (locales/active.<tag>.toml,
// go-i18n's format); a page speaks the best match of the visitor's
// Accept-Language, English when none matches.
//
// The package imports no module: what a page needs of the accounts module
// and the access policy comes through Deps, which cmd/steward fills.
package portal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/locale"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/policies"
)

// Routes of the accounts module the pages' forms post to (the HTTP
// contract in DESIGN.md).
const (
	pathGoogleSignIn = "/v1/auth/google"
	pathDevSignIn    = "/v1/auth/dev"
	pathSignOut      = "/v1/auth/logout"
)

// Google Identity Services, the one third-party origin a page may use:
// its client script, the frames and requests of the button and One Tap,
// and its stylesheet, as Google documents them for a Content-Security-
// Policy.
const (
	googleScript = "https://accounts.google.com/gsi/client"
	googleFrames = "https://accounts.google.com/gsi/"
	googleStyle  = "https://accounts.google.com/gsi/style"
)

// fieldCSRF is the form field the CSRF middleware reads the session's
// token from (accounts.FieldCSRF).
const fieldCSRF = "csrf_token"

// Account is the signed-in person as the entry page shows them.
type Account struct {
	Name  string
	Email string
	// Role is one of authz.Roles.
	Role string
	// Language is the account's language, a BCP 47 tag; the pages speak
	// it unless the person picked another with the switcher.
	Language string
}

// Config is the pages' part of the configuration.
type Config struct {
	// GoogleClientID turns on Sign in with Google (the button and One Tap)
	// on the sign-in page; empty leaves Google out, its script included.
	GoogleClientID string
	// BaseURL is the public URL of this server; Google posts the
	// credential to BaseURL + /v1/auth/google.
	BaseURL string
	// Dev shows the email sign-in form (POST /v1/auth/dev is mounted).
	Dev bool
	// Development tells signed-out visitors of a development server about
	// the one-time first-admin link the server prints.
	Development bool
	// Links are the entry page's links; DefaultLinks when nil.
	Links []Link
}

// Deps is what the pages need from the rest of Steward; cmd/steward fills
// it from the accounts module and the policy engine.
type Deps struct {
	// Account returns the signed-in account. Required.
	Account func(ctx context.Context, userID string) (Account, error)
	// CSRFToken returns the CSRF token of the request's session, "" when
	// it has none, for the forms' hidden csrf_token field. Required.
	CSRFToken func(c *fiber.Ctx) string
	// Allowed answers the links' access questions; GuardAllowed builds it
	// from the access policy. Required.
	Allowed Allowed
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives warnings (a message missing from every language);
	// nil discards them.
	Logger *slog.Logger
	// Taxonomy is the policy's data categories, whose texts the pages
	// show in every language. Required with Privacy.
	Taxonomy map[string]policies.Category
	// Privacy is what the privacy center reads; nil leaves /privacy
	// unmounted.
	Privacy *Privacy
	// Messages are more message files the pages show: the consent
	// banner's wording, which the choices page shares (ids Banner...).
	Messages []locale.Source
	// Console is what the console reads; nil leaves /console unmounted.
	Console *Console
}

// Portal serves the pages.
type Portal struct {
	cfg       Config
	account   func(ctx context.Context, userID string) (Account, error)
	csrfToken func(c *fiber.Ctx) string
	now       func() time.Time
	log       *slog.Logger
	links     []Link
	allowed   Allowed
	privacy   *Privacy
	console   *Console
	taxonomy  map[string]policies.Category
	catalog   *locale.Catalog
	pages     map[string]*template.Template
	assets    map[string]asset
}

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// pageNames are the templates rendered as whole pages; each defines
// "content" inside templates/layout.html.
var pageNames = []string{"signin", "home", "privacy", "consent", "data", "request", "delete",
	"console", "console-datamap", "console-policy", "console-consent", "console-audit", "console-requests", "console-request",
	"console-attribution"}

// New parses the templates and message files and returns the pages.
func New(cfg Config, deps Deps) (*Portal, error) {
	if deps.Account == nil || deps.CSRFToken == nil || deps.Allowed == nil {
		return nil, errors.New("portal: Account, CSRFToken and Allowed are required")
	}
	if co := deps.Console; co != nil && !co.complete() {
		return nil, errors.New("portal: the console needs every field of Console")
	}
	if pr := deps.Privacy; pr != nil && (pr.Categories == nil || pr.Holdings == nil || pr.Consent == nil || pr.Requests == nil || deps.Taxonomy == nil) {
		return nil, errors.New("portal: the privacy center needs Taxonomy and every field of Privacy")
	}
	p := &Portal{cfg: cfg, account: deps.Account, csrfToken: deps.CSRFToken, now: deps.Now, log: deps.Logger,
		links: cfg.Links, allowed: deps.Allowed, privacy: deps.Privacy, console: deps.Console, taxonomy: deps.Taxonomy}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.links == nil {
		p.links = DefaultLinks()
	}
	var err error
	if p.catalog, err = loadCatalog(append([]locale.Source{policies.Messages(deps.Taxonomy)}, deps.Messages...)...); err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	if p.assets, err = loadAssets(); err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	p.pages = make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).
			ParseFS(templateFiles, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("portal: parse page %s: %w", name, err)
		}
		p.pages[name] = t
	}
	return p, nil
}

// Route paths.
const (
	pathHome   = "/"
	pathStatic = "/static/:name"
)

const tag = "pages"

// Mount adds the pages' routes. Mount it after the CSRF and
// authentication middleware, like the modules.
func (p *Portal) Mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathHome, Tag: tag,
		Summary: "The entry page: sign-in when signed out; who you are, sign-out and links by role when signed in",
		Description: "An HTML page for people, in the language of Accept-Language. `?error=<code>` explains a failed " +
			"form sign-in the sign-in routes sent the browser back with.",
		Responses: map[int]any{200: web.Body{ContentType: fiber.MIMETextHTMLCharsetUTF8}},
	}, p.home)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathStatic, Tag: tag,
		Summary:   "The pages' stylesheet and icons, embedded in the binary",
		Responses: map[int]any{200: web.Body{ContentType: "text/css"}, 304: nil, 404: nil},
	}, p.static)
	p.mountLanguage(r, doc)
	if p.privacy != nil {
		p.mountPrivacy(r, doc)
	}
	if p.console != nil {
		p.mountConsole(r, doc)
	}
}

// contentSecurityPolicy is the policy of every page: nothing but this
// origin's own scripts, styles, images and form targets, no inline script
// or style (the templates have none), no framing, no <base>. The one
// exception is Google Identity Services on a page that embeds Google's
// sign-in: its script, frames, requests and stylesheet, as Google
// documents them, and nothing else of Google's.
func contentSecurityPolicy(google bool) string {
	script, style := []string{"'self'"}, []string{"'self'"}
	var frame, connect []string
	if google {
		script = append(script, googleScript)
		style = append(style, googleStyle)
		frame = append(frame, googleFrames)
		connect = append(connect, googleFrames)
	}
	directives := []struct {
		name    string
		sources []string
	}{
		{"default-src", []string{"'none'"}},
		{"script-src", script},
		{"style-src", style},
		{"img-src", []string{"'self'", "data:"}},
		{"frame-src", frame},
		{"connect-src", connect},
		{"form-action", []string{"'self'"}},
		{"frame-ancestors", []string{"'none'"}},
		{"base-uri", []string{"'none'"}},
	}
	var b strings.Builder
	for _, d := range directives {
		if len(d.sources) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(d.name + " " + strings.Join(d.sources, " "))
	}
	return b.String()
}

// setSecurityHeaders sets the headers every answer of the portal carries.
// The referrer policy sends other origins at most this origin, never a
// path or query; Google's sign-in needs the origin, so a page that embeds
// it keeps the browsers' default rather than same-origin.
func setSecurityHeaders(c *fiber.Ctx, google bool) {
	c.Set("Content-Security-Policy", contentSecurityPolicy(google))
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	if google {
		c.Set(fiber.HeaderReferrerPolicy, "strict-origin-when-cross-origin")
	} else {
		c.Set(fiber.HeaderReferrerPolicy, "same-origin")
	}
}

// page is what the templates see.
type page struct {
	L      *localizer
	Title  string
	assets map[string]asset
	// Languages are the switcher's choices.
	Languages []languageChoice

	// Signed out.
	Google      *googleSignIn
	Dev         bool
	Development bool
	NoMethod    bool
	Error       string
	EmailError  bool
	DevURL      string
	// Next is the page of this site a sign-in returns to.
	Next string

	// Signed in.
	User      *Account
	RoleLabel string
	CSRFField string
	CSRF      string
	SignOut   string
	Links     []shownLink

	// The privacy center.
	Nav               []navItem
	Categories        int
	Sections          []keptSection
	VisitorCategories []keptCategory
	HeldItems         int64
	HeldCategories    int
	// BrowserCounted is true when a visitor's counts are the browser's.
	BrowserCounted bool
	Consent        *ConsentState
	Purposes       []purposeChoice
	History        []ConsentRecord
	Saved          bool
	Requests       []PrivacyRequest
	OpenExport     bool
	ExportAction   string
	Request        *PrivacyRequest
	Stages         []requestStage
	// Refresh reloads the page every few seconds (a request in progress).
	Refresh bool
	// Certificate is the erasure certificate a request page shows.
	Certificate  *certificateView
	Erasure      []erasureGroup
	Reauth       bool
	DeleteAction string
	// VisitorCookie is true on a visitor's pages when their browser holds
	// a visitor cookie, whose records they may download and erase.
	VisitorCookie bool

	// The console.
	// Wide lets the page use the window's width, for wide tables.
	Wide         bool
	ConsoleLinks []shownLink
	DataMap      *dataMapView
	Policy       *PolicyView
	// Applied is the revision just put in force.
	Applied       string
	ConsentReport *consentView
	Audit         *auditView
	Queue         *requestsView
	Queued        *requestView
	Attribution   *attributionView
}

// googleSignIn configures Google's HTML API on the sign-in page.
type googleSignIn struct {
	ClientID string
	LoginURI string
	Script   string
}

// Asset returns the URL of an embedded static file, with its content hash
// so a changed file is fetched anew.
func (pg *page) Asset(name string) string {
	return "/static/" + name + "?v=" + pg.assets[name].version
}

func (p *Portal) newPage(c *fiber.Ctx, l *localizer) *page {
	return &page{L: l, assets: p.assets, Languages: p.languageChoices(c, l)}
}

// signInErrors maps the codes the sign-in routes send a failed form
// post back with (accounts.SignInErrorCodes) to their messages.
var signInErrors = map[string]string{
	"email_invalid":    "ErrorEmailInvalid",
	"rate_limited":     "ErrorRateLimited",
	"account_disabled": "ErrorAccountDisabled",
	"sign_in_refused":  "ErrorSignInRefused",
	"account_conflict": "ErrorAccountConflict",
	"unavailable":      "ErrorUnavailable",
}

func (p *Portal) home(c *fiber.Ctx) error {
	ctx := c.UserContext()
	if pr, ok := authz.FromContext(ctx); ok {
		acc, err := p.account(ctx, pr.UserID)
		if err != nil {
			return fmt.Errorf("read the signed-in account: %w", err)
		}
		l := p.languageFor(c, &acc)
		pg := p.newPage(c, l)
		links, err := p.linksFor(ctx, pr, l)
		if err != nil {
			return fmt.Errorf("links for role %s: %w", pr.Role, err)
		}
		pg.Title = l.T("HomeTitle")
		pg.User, pg.RoleLabel, pg.Links = &acc, roleLabel(l, acc.Role), links
		pg.CSRF, pg.CSRFField, pg.SignOut = p.csrfToken(c), fieldCSRF, pathSignOut
		return p.render(c, "home", pg)
	}
	l := p.languageFor(c, nil)
	pg := p.newPage(c, l)
	pg.Title = l.T("SignInTitle")
	if code := c.Query("error"); code != "" {
		id, ok := signInErrors[code]
		if !ok {
			// The code comes from the URL: an unknown one is never echoed.
			id = "ErrorGeneric"
		}
		pg.Error, pg.EmailError = l.T(id), code == "email_invalid"
	}
	// A page that asked for a (new) sign-in is where the sign-in returns.
	pg.Next = web.LocalPath(c.Query(web.ParamNext))
	if p.cfg.GoogleClientID != "" {
		loginURI := strings.TrimRight(p.cfg.BaseURL, "/") + pathGoogleSignIn
		if pg.Next != "" {
			loginURI += "?" + url.Values{web.ParamNext: {pg.Next}}.Encode()
		}
		pg.Google = &googleSignIn{ClientID: p.cfg.GoogleClientID, LoginURI: loginURI, Script: googleScript}
	}
	pg.Dev, pg.DevURL, pg.Development = p.cfg.Dev, pathDevSignIn, p.cfg.Development
	pg.NoMethod = pg.Google == nil && !pg.Dev
	return p.render(c, "signin", pg)
}

// roleLabel names a role in the page's language; a role the messages do
// not know shows as it is.
func roleLabel(l *localizer, role string) string {
	if role == "" {
		return ""
	}
	id := roleMessageID(role)
	if s := l.T(id); s != id {
		return s
	}
	return role
}

func roleMessageID(role string) string {
	return "Role" + strings.ToUpper(role[:1]) + role[1:]
}

// render writes a whole page. It renders into a buffer first, so a
// template error answers a problem instead of half a page.
func (p *Portal) render(c *fiber.Ctx, name string, pg *page) error {
	var buf bytes.Buffer
	if err := p.pages[name].ExecuteTemplate(&buf, "layout", pg); err != nil {
		return fmt.Errorf("render page %s: %w", name, err)
	}
	if missing := pg.L.Missing(); len(missing) > 0 {
		p.log.WarnContext(c.UserContext(), "page uses messages no language file has",
			slog.String("page", name), slog.String("messages", strings.Join(missing, ",")))
	}
	setSecurityHeaders(c, pg.Google != nil)
	// Pages show who is signed in and carry the session's CSRF token.
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(buf.Bytes())
}

// asset is one embedded static file.
type asset struct {
	body        []byte
	contentType string
	version     string
}

// contentTypes are the types of the static files by extension; a file of
// any other kind fails New.
var contentTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
	".js":  "text/javascript; charset=utf-8",
}

func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	err := fs.WalkDir(staticFiles, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("static file %s: unknown content type", name)
		}
		body, err := staticFiles.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		out[path.Base(name)] = asset{body: body, contentType: ct, version: hex.EncodeToString(sum[:8])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load static files: %w", err)
	}
	return out, nil
}

// static serves an embedded file. A URL with the file's current version
// (as Asset makes it) may be cached for a year; others revalidate.
func (p *Portal) static(c *fiber.Ctx) error {
	a, ok := p.assets[c.Params("name")]
	if !ok {
		return errs.E(errs.ErrNotFound, "No such file.")
	}
	setSecurityHeaders(c, false)
	if c.Query("v") == a.version {
		c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	} else {
		c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	}
	c.Set(fiber.HeaderETag, `"`+a.version+`"`)
	if c.Fresh() {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, a.contentType)
	return c.Send(a.body)
}
