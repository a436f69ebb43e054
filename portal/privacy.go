package portal

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/message"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/policies"
)

// Privacy is what the privacy center (/privacy) reads. Each function is
// the one the matching API route uses, so a page never shows what the API
// would not; cmd/steward fills it from the data map, the consent module
// and the privacy module.
type Privacy struct {
	// Categories returns the personal data categories Steward stores
	// columns of, as the data map finds them in the live stores.
	Categories func(ctx context.Context) ([]StoredCategory, error)
	// Holdings counts, per category key, what is held about the principal
	// right now (GET /v1/privacy/holdings).
	Holdings func(ctx context.Context, p authz.Principal) (map[string]int64, error)
	// VisitorHoldings counts, per category key, what is held about the
	// request's browser for whoever holds its visitor cookie: what it did
	// since the last sign-in on it. Nil when the browser has no cookie;
	// a nil function shows a visitor no counts.
	VisitorHoldings func(c *fiber.Ctx) (map[string]int64, error)
	// HasVisitorCookie reports whether the request's browser holds a
	// visitor cookie, which ties its anonymous records to it. Nil: no
	// browser does, and a visitor files no requests.
	HasVisitorCookie func(c *fiber.Ctx) bool
	// Consent reads and records the request's consent (GET and PUT
	// /v1/consent).
	Consent Consent
	// Requests files and shows privacy requests (/v1/privacy/requests).
	Requests Requests
}

// StoredCategory is a personal data category the stores hold.
type StoredCategory struct {
	Category policies.Category
	// Visitor is true when records of the category are tied to a browser's
	// visitor id, so a visitor who never signed in has them too.
	Visitor bool
}

// Consent is the consent module as the preferences page uses it.
type Consent interface {
	// Current is the consent in effect for the request's browser and
	// account.
	Current(c *fiber.Ctx) (ConsentState, error)
	// Choose records a choice made on the page: method is one of the
	// consent module's (preferences, banner_accept, banner_reject), with
	// the optional purposes granted or denied, under the versions the page
	// showed.
	Choose(c *fiber.Ctx, choice ConsentChoice) error
	// History is the caller's proof log, oldest first.
	History(c *fiber.Ctx) ([]ConsentRecord, error)
}

// ConsentState is the consent in effect.
type ConsentState struct {
	// Purposes are the purposes in the order the banner shows them,
	// necessary first.
	Purposes []string
	// Granted says which are in effect.
	Granted map[string]bool
	// GPC is true when the browser sends Global Privacy Control and
	// marketing is off because of it.
	GPC bool
	// Chosen is false before any choice; DecidedAt and ExpiresAt date the
	// newest one.
	Chosen               bool
	DecidedAt, ExpiresAt time.Time
	// Ask is true when the choice must be made again (AskReason says why:
	// no_choice, policy_changed or expired).
	Ask       bool
	AskReason string
	// PolicyVersion and BannerVersion are the versions in force, which a
	// choice made on the page is recorded under.
	PolicyVersion, BannerVersion string
}

// ConsentChoice is a choice made on the preferences page.
type ConsentChoice struct {
	Method                       string
	Purposes                     map[string]bool
	PolicyVersion, BannerVersion string
}

// ConsentRecord is one row of the proof log.
type ConsentRecord struct {
	At      time.Time
	Purpose string
	Granted bool
	// Method is how the choice was made (banner_accept, preferences, gpc,
	// merge, ...).
	Method        string
	GPC           bool
	PolicyVersion string
	// Browser is the parsed browser the choice came from.
	Browser string
}

// Consent methods the page records with, as the consent module names
// them.
const (
	consentPreferences = "preferences"
	consentAcceptAll   = "banner_accept"
	consentRejectAll   = "banner_reject"
	purposeNecessary   = "necessary"
)

// ConsentMethods are the ways a choice is recorded that the history
// names: the consent module's methods, and merge (a choice an account
// took over from its browser at sign-in).
func ConsentMethods() []string {
	return []string{"banner_accept", "banner_reject", "banner_save", "preferences", "gpc", "api", "merge"}
}

// Requests is the privacy module as the pages use it.
type Requests interface {
	// List returns the principal's own requests, newest first.
	List(ctx context.Context, p authz.Principal) ([]PrivacyRequest, error)
	// File files a request of type access or erasure for the principal.
	File(ctx context.Context, p authz.Principal, typ string) (PrivacyRequest, error)
	// Show returns one of the principal's requests with its trail.
	Show(ctx context.Context, p authz.Principal, id string) (PrivacyRequest, error)
	// ShowByToken returns a request with its trail for one of its status
	// tokens, without a session: an erased account has none left.
	ShowByToken(ctx context.Context, id, token string) (PrivacyRequest, error)
	// ErasurePreview says what erasing the principal's account would do
	// now, category by category.
	ErasurePreview(ctx context.Context, p authz.Principal) ([]ErasureItem, error)
	// CheckRecentSignIn is nil when the principal signed in recently
	// enough to erase their account, a Forbidden error otherwise.
	CheckRecentSignIn(ctx context.Context, p authz.Principal) error

	// VisitorList returns the requests filed from the request's browser,
	// by the visitor id of its cookie, newest first; none without one.
	VisitorList(c *fiber.Ctx) ([]PrivacyRequest, error)
	// VisitorFile files a request of type access or erasure about what
	// the request's browser holds, with the pages' language lang; an
	// erasure also removes the browser's cookie, so its next visits are
	// not tied to what is erased.
	VisitorFile(c *fiber.Ctx, typ, lang string) (PrivacyRequest, error)
	// VisitorShow returns one of the browser's requests with its trail.
	VisitorShow(c *fiber.Ctx, id string) (PrivacyRequest, error)
	// VisitorErasurePreview says what erasing what the browser holds
	// would do now.
	VisitorErasurePreview(c *fiber.Ctx) ([]ErasureItem, error)
}

// ErasureItem is what an erasure would do to the items of one category.
type ErasureItem struct {
	Category string
	// Action is delete, anonymize or keep (review when no rule decides).
	Action string
	// Reason is the policy's, in its English; Until its rule for what
	// stays ("P10Y from order_paid").
	Reason, Until string
	Items         int64
}

// Certificate is an erasure's certificate as a person reads it.
type Certificate struct {
	StartedAt, CompletedAt time.Time
	// Passed is true when the verification found nothing of the person
	// left but what is kept.
	Passed bool
	Tables []CertificateTable
	Kept   []CertificateKept
	// JSON is the certificate as the API gives it, for download.
	JSON []byte
}

// CertificateTable is one table's rows of the person before and after.
type CertificateTable struct {
	Store, Table, Mode  string
	Before, After, Kept int64
}

// CertificateKept is a category the erasure kept, and why.
type CertificateKept struct {
	Category    string
	Rows        int64
	Reason      string
	Until       string
	UntilLatest *time.Time
}

// PrivacyRequest is a privacy request as the pages show it.
type PrivacyRequest struct {
	ID, Type, Status string
	// Visitor is true for a request about what a browser holds, filed by
	// a visitor who was not signed in.
	Visitor     bool
	ReceivedAt  time.Time
	DueAt       time.Time
	CompletedAt *time.Time
	// Failure says why a failed request failed.
	Failure string
	// PackageSize is the size of an access package in bytes.
	PackageSize int64
	// DownloadURL is a signed link to the package while it is kept;
	// DownloadExpiresAt ends the link, PackageExpiresAt the package.
	DownloadURL                         string
	DownloadExpiresAt, PackageExpiresAt *time.Time
	// Trail is the request's history, oldest first (Show only).
	Trail []RequestStep
	// StatusToken shows the request without a session (ShowByToken).
	StatusToken string
	// Certificate is a completed erasure's.
	Certificate *Certificate
}

// RequestStep is one entry of a request's trail.
type RequestStep struct {
	At time.Time
	// Event is a status, or another of requestEvents.
	Event string
	// ActorKind says who took the step (ActorSubject, ...); Actor names a
	// staff member, by address. The console shows them, with Note, the
	// step's note (a reason given); the privacy center does not.
	ActorKind, Actor string
	Note             string
}

// Request types and statuses, as the privacy module names them.
const (
	requestAccess     = "access"
	requestErasure    = "erasure"
	requestCompleted  = "completed"
	requestFailed     = "failed"
	requestRejected   = "rejected"
	requestReceived   = "received"
	requestVerified   = "verified"
	requestProcessing = "processing"
)

// requestStatuses are every status a request can have.
var requestStatuses = []string{requestReceived, requestVerified, requestProcessing, requestCompleted, requestFailed, requestRejected}

// requestEvents are every step a request's trail names: a status, or one
// of the privacy module's other events.
var requestEvents = append(slices.Clone(requestStatuses), "extended", "downloaded", "error", "package_removed", "retried")

// Privacy center paths.
const (
	pathPrivacy        = "/privacy"
	pathPrivacyConsent = "/privacy/consent"
	pathPrivacyData    = "/privacy/data"
	pathPrivacyExport  = "/privacy/data/export"
	pathPrivacyRequest = "/privacy/requests/:id"
	pathPrivacyCert    = "/privacy/requests/:id/certificate.json"
	pathPrivacyDelete  = "/privacy/delete"
)

// mountPrivacy adds the privacy center's routes.
func (p *Portal) mountPrivacy(r fiber.Router, doc web.Documenter) {
	html := map[int]any{200: web.Body{ContentType: fiber.MIMETextHTMLCharsetUTF8}}
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathPrivacy, Tag: tag,
		Summary: "The privacy center: every category of personal data Steward keeps, in plain words",
		Description: "What each category is, what it is used for and on which legal basis, how long it is kept and what " +
			"erasure does to it, built from the data map and the policy. Signed in, with how many items of each " +
			"Steward holds about you; signed out, with what a browser's cookie and events hold.",
		Responses: html,
	}, p.privacyHome)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathPrivacyConsent, Tag: tag,
		Summary:     "Cookie and analytics choices: the choices in effect, the Global Privacy Control signal, and the history of choices",
		Description: "`?saved=1` confirms a choice just recorded; `?error=version` asks to choose again after the policy changed.",
		Responses:   html,
	}, p.consentPage)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: pathPrivacyConsent, Tag: tag,
		Summary: "Record a choice made on the preferences page (a form post), then go back to it",
		Description: "Form fields: `action` (`save`, `accept_all` or `reject_all`), one `purpose_<name>=on` per granted " +
			"purpose for `save`, and the `policy_version` and `banner_version` the page showed. Answers `303` to " +
			"`/privacy/consent`. A post from another site is refused (403).",
		Responses: map[int]any{303: nil, 400: nil, 403: nil},
	}, p.consentPost)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathPrivacyData, Tag: tag,
		Summary: "Your data: download it, and the history of your privacy requests",
		Description: "Signed out, with a visitor cookie, the same for what the browser holds (its activity since the last " +
			"sign-in on it) and the browser's requests; without one, the page says nothing is tied to the browser and " +
			"links to the sign-in page.",
		Responses: html,
	}, p.dataPage)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: pathPrivacyExport, Tag: tag,
		Summary: "File an access request for your data (a form post), then show its progress",
		Description: "Answers `303` to the request's page; when the request cannot be filed (one is already open, " +
			"too many requests), `303` back to `/privacy/data?error=<code>`. Signed out, files the request about what " +
			"the browser's visitor cookie ties to it; without a session or a visitor cookie, 401.",
		Responses: map[int]any{303: nil, 401: nil, 403: nil},
	}, p.exportPost)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathPrivacyRequest, Tag: tag,
		Summary: "One of your privacy requests: its progress, its trail and, when ready, the download of your data",
		Description: "While the request runs the page reloads itself every few seconds (a meta refresh, which needs no " +
			"JavaScript). Signed out, a request the browser filed is shown by its visitor cookie. Another account's or " +
			"browser's request answers 404.",
		Responses: map[int]any{200: web.Body{ContentType: fiber.MIMETextHTMLCharsetUTF8}, 401: nil, 404: nil},
	}, p.requestPage)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathPrivacyCert, Tag: tag,
		Summary: "The certificate of your completed erasure, as JSON to keep",
		Description: "Signed in, or with the request's `token` (the account an erasure deletes has no session left). " +
			"Answers 404 while there is no certificate.",
		Responses: map[int]any{200: web.Body{ContentType: fiber.MIMEApplicationJSON}, 401: nil, 404: nil},
	}, p.certificateJSON)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathPrivacyDelete, Tag: tag,
		Summary: "Delete your account: first what it would delete, anonymize and keep (and until when, and why), then the confirmation",
		Description: "The preview is built from the decisions the erasure follows, for what is held about you now. " +
			"When your sign-in is not recent, the page asks you to sign in again first.",
		Responses: html,
	}, p.deletePage)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: pathPrivacyDelete, Tag: tag,
		Summary: "Confirm the deletion of your account (a form post)",
		Description: "Form fields: `confirm=on`. Answers `303` to the request's page with its status token, or back to " +
			"`/privacy/delete?error=<code>`: `confirm` when the box was not ticked, `reauth` when the sign-in is not " +
			"recent. Signed out, erases what the browser's visitor cookie ties to it and removes the cookie; without a " +
			"session or a visitor cookie, 401.",
		Responses: map[int]any{303: nil, 401: nil, 403: nil},
	}, p.deletePost)
}

// privacyNav is the privacy center's navigation, with the page shown.
type navItem struct {
	Href, Label string
	Current     bool
}

func (p *Portal) privacyNav(l *localizer, current string) []navItem {
	items := []navItem{
		{Href: pathPrivacy, Label: l.T("PrivacyNavKeep")},
		{Href: pathPrivacyConsent, Label: l.T("PrivacyNavConsent")},
		{Href: pathPrivacyData, Label: l.T("PrivacyNavData")},
	}
	for i := range items {
		items[i].Current = items[i].Href == current
	}
	return items
}

// privacyPage starts a privacy center page: its language, navigation and
// who is signed in (nil for a visitor), with their account.
func (p *Portal) privacyPage(c *fiber.Ctx, current, titleID string) (*page, *authz.Principal, error) {
	var acc *Account
	pr, signedIn := authz.FromContext(c.UserContext())
	if signedIn {
		a, err := p.account(c.UserContext(), pr.UserID)
		if err != nil {
			return nil, nil, fmt.Errorf("read the signed-in account: %w", err)
		}
		acc = &a
	}
	l := p.languageFor(c, acc)
	pg := p.newPage(c, l)
	pg.Title = l.T(titleID)
	pg.Nav = p.privacyNav(l, current)
	pg.CSRF, pg.CSRFField = p.csrfToken(c), fieldCSRF
	pg.User = acc
	if !signedIn {
		return pg, nil, nil
	}
	return pg, &pr, nil
}

// keptCategory is one category on the "What we keep" page.
type keptCategory struct {
	policies.Words
	// Held counts the items held about the signed-in person; Counted is
	// false for a visitor, who sees no counts.
	Held    int64
	Counted bool
	Visitor bool
}

// keptSection is the categories of one privacy-policy section.
type keptSection struct {
	Number     int
	Title      string
	Categories []keptCategory
}

func (p *Portal) privacyHome(c *fiber.Ctx) error {
	ctx := c.UserContext()
	pg, pr, err := p.privacyPage(c, pathPrivacy, "PrivacyTitle")
	if err != nil {
		return err
	}
	stored, err := p.privacy.Categories(ctx)
	if err != nil {
		return fmt.Errorf("read the data map: %w", err)
	}
	var held map[string]int64
	switch {
	case pr != nil:
		if held, err = p.privacy.Holdings(ctx, *pr); err != nil {
			return fmt.Errorf("count what is held: %w", err)
		}
	case p.privacy.VisitorHoldings != nil:
		if held, err = p.privacy.VisitorHoldings(c); err != nil {
			return fmt.Errorf("count what the browser holds: %w", err)
		}
		pg.BrowserCounted = held != nil
	}
	// By the policy's sections; categories it does not name (section 0)
	// come last.
	rank := func(c policies.Category) int {
		if c.Section.Number == 0 {
			return math.MaxInt
		}
		return c.Section.Number
	}
	sort.Slice(stored, func(i, j int) bool {
		a, b := stored[i].Category, stored[j].Category
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		return a.Key < b.Key
	})
	bySection := map[int]*keptSection{}
	var order []int
	for _, s := range stored {
		n := s.Category.Section.Number
		sec, ok := bySection[n]
		if !ok {
			sec = &keptSection{Number: n, Title: pg.L.T("Section." + fmt.Sprint(n))}
			bySection[n] = sec
			order = append(order, n)
		}
		kc := keptCategory{Words: policies.PlainWords(pg.L, s.Category), Visitor: s.Visitor}
		// A visitor's counts are the browser's, which only its categories
		// can hold.
		if held != nil && (pr != nil || s.Visitor) {
			kc.Held, kc.Counted = held[s.Category.Key], true
			pg.HeldItems += kc.Held
			if kc.Held > 0 {
				pg.HeldCategories++
			}
		}
		if s.Visitor {
			pg.VisitorCategories = append(pg.VisitorCategories, kc)
		}
		sec.Categories = append(sec.Categories, kc)
	}
	for _, n := range order {
		pg.Sections = append(pg.Sections, *bySection[n])
	}
	pg.Categories = len(stored)
	return p.render(c, "privacy", pg)
}

// purposeChoice is one purpose on the preferences page.
type purposeChoice struct {
	Name, Label, Text string
	Granted, Fixed    bool
}

// consentErrors maps the codes a failed choice comes back with to their
// messages.
var consentErrors = map[string]string{
	"version": "ConsentErrorVersion",
	"invalid": "ConsentErrorInvalid",
}

func (p *Portal) consentPage(c *fiber.Ctx) error {
	pg, _, err := p.privacyPage(c, pathPrivacyConsent, "ConsentTitle")
	if err != nil {
		return err
	}
	st, err := p.privacy.Consent.Current(c)
	if err != nil {
		return fmt.Errorf("read consent: %w", err)
	}
	history, err := p.privacy.Consent.History(c)
	if err != nil {
		return fmt.Errorf("read the consent history: %w", err)
	}
	pg.Consent = &st
	for _, name := range st.Purposes {
		id := purposeMessageID(name)
		pg.Purposes = append(pg.Purposes, purposeChoice{
			Name: name, Label: pg.L.T(id + "Label"), Text: pg.L.T(id + "Text"),
			Granted: st.Granted[name] || name == purposeNecessary, Fixed: name == purposeNecessary,
		})
	}
	// Newest first: the latest choice is what a person looks for.
	slices.Reverse(history)
	pg.History = history
	pg.Saved = c.Query("saved") == "1"
	pg.Error = errorMessage(pg.L, consentErrors, c.Query("error"))
	return p.render(c, "consent", pg)
}

// purposeMessageID is the start of a purpose's messages, which the
// consent banner shows too: BannerPurpose<Name>Label and
// BannerPurpose<Name>Text (consent.PurposeMessageID).
func purposeMessageID(name string) string {
	return "BannerPurpose" + strings.ToUpper(name[:1]) + name[1:]
}

// consentForm is the preferences form.
type consentForm struct {
	Action        string `form:"action"`
	PolicyVersion string `form:"policy_version"`
	BannerVersion string `form:"banner_version"`
}

func (p *Portal) consentPost(c *fiber.Ctx) error {
	if err := sameOrigin(c); err != nil {
		return err
	}
	var f consentForm
	if err := c.BodyParser(&f); err != nil {
		return errs.Invalid("body", "form", "The form could not be read.")
	}
	choice := ConsentChoice{PolicyVersion: f.PolicyVersion, BannerVersion: f.BannerVersion}
	switch f.Action {
	case "accept_all":
		choice.Method = consentAcceptAll
	case "reject_all":
		choice.Method = consentRejectAll
	case "save":
		choice.Method, choice.Purposes = consentPreferences, map[string]bool{}
		st, err := p.privacy.Consent.Current(c)
		if err != nil {
			return fmt.Errorf("read consent: %w", err)
		}
		for _, name := range st.Purposes {
			if name != purposeNecessary {
				choice.Purposes[name] = c.FormValue("purpose_"+name) == "on"
			}
		}
	default:
		var v errs.ValidationError
		v.Add("action", "enum", "Must be save, accept_all or reject_all.")
		return v.Err()
	}
	if err := p.privacy.Consent.Choose(c, choice); err != nil {
		var v *errs.ValidationError
		if errors.As(err, &v) {
			code := "invalid"
			for _, fe := range v.Errors {
				if fe.Field == "policy_version" || fe.Field == "banner_version" {
					code = "version"
				}
			}
			return c.Redirect(pathPrivacyConsent+"?error="+code, fiber.StatusSeeOther)
		}
		return err
	}
	return c.Redirect(pathPrivacyConsent+"?saved=1", fiber.StatusSeeOther)
}

// dataErrors maps the codes a refused request comes back with to their
// messages.
var dataErrors = map[string]string{
	"refused": "DataErrorRefused",
}

func (p *Portal) dataPage(c *fiber.Ctx) error {
	ctx := c.UserContext()
	pg, pr, err := p.privacyPage(c, pathPrivacyData, "DataTitle")
	if err != nil {
		return err
	}
	var list []PrivacyRequest
	switch {
	case pr != nil:
		list, err = p.privacy.Requests.List(ctx, *pr)
	case p.visitorCookie(c):
		pg.VisitorCookie = true
		list, err = p.privacy.Requests.VisitorList(c)
	default:
		return p.render(c, "data", pg)
	}
	if err != nil {
		return fmt.Errorf("list privacy requests: %w", err)
	}
	pg.OpenExport = openOf(list, requestAccess) != ""
	pg.Requests = list
	pg.Error = errorMessage(pg.L, dataErrors, c.Query("error"))
	pg.ExportAction = pathPrivacyExport
	return p.render(c, "data", pg)
}

func (p *Portal) exportPost(c *fiber.Ctx) error {
	if err := sameOrigin(c); err != nil {
		return err
	}
	pr, signedIn := authz.FromContext(c.UserContext())
	if !signedIn {
		return p.visitorFile(c, requestAccess, pathPrivacyData)
	}
	// A download already being prepared is the one to wait for: a second
	// click must not build a second package.
	if open, err := p.openRequest(c.UserContext(), pr, requestAccess); err != nil || open != "" {
		if err != nil {
			return err
		}
		return c.Redirect(requestPath(open), fiber.StatusSeeOther)
	}
	req, err := p.privacy.Requests.File(c.UserContext(), pr, requestAccess)
	switch {
	case errors.Is(err, errs.ErrForbidden), errors.Is(err, errs.ErrRateLimited):
		return c.Redirect(pathPrivacyData+"?error=refused", fiber.StatusSeeOther)
	case err != nil:
		return err
	}
	return c.Redirect(requestPath(req.ID), fiber.StatusSeeOther)
}

// visitorCookie reports whether the request's browser holds a visitor
// cookie.
func (p *Portal) visitorCookie(c *fiber.Ctx) bool {
	return p.privacy.HasVisitorCookie != nil && p.privacy.HasVisitorCookie(c)
}

// visitorFile files a request of type typ about what the browser holds,
// for a visitor who is not signed in, and shows its page: by the browser's
// cookie for a download, by its status token for an erasure, which
// removes the cookie. Refusals go back to the form's page, back.
func (p *Portal) visitorFile(c *fiber.Ctx, typ, back string) error {
	if !p.visitorCookie(c) {
		return errs.E(errs.ErrUnauthenticated, "Sign in, or accept or reject cookies first: this browser holds no cookie that ties anything to it.")
	}
	lang := p.languageFor(c, nil).Lang()
	req, err := p.privacy.Requests.VisitorFile(c, typ, lang)
	switch {
	case errors.Is(err, errs.ErrForbidden), errors.Is(err, errs.ErrRateLimited):
		return c.Redirect(back+"?error=refused", fiber.StatusSeeOther)
	case err != nil:
		return err
	}
	if typ == requestErasure {
		return c.Redirect(requestPath(req.ID)+"?token="+url.QueryEscape(req.StatusToken), fiber.StatusSeeOther)
	}
	return c.Redirect(requestPath(req.ID), fiber.StatusSeeOther)
}

// openRequest returns the id of the principal's unfinished request of
// type typ, "" when there is none.
func (p *Portal) openRequest(ctx context.Context, pr authz.Principal, typ string) (string, error) {
	list, err := p.privacy.Requests.List(ctx, pr)
	if err != nil {
		return "", fmt.Errorf("list privacy requests: %w", err)
	}
	return openOf(list, typ), nil
}

// openOf returns the id of the first unfinished request of type typ in
// list, "" when there is none.
func openOf(list []PrivacyRequest, typ string) string {
	for _, r := range list {
		if r.Type == typ && !finished(r.Status) {
			return r.ID
		}
	}
	return ""
}

// requestPath is the page of one request.
func requestPath(id string) string {
	return "/privacy/requests/" + url.PathEscape(id)
}

// requestStage is one step of a request's progress.
type requestStage struct {
	Label       string
	Done, Now   bool
	Unreachable bool
}

// requestFor reads the request of the URL: by its status token when the
// query has one, else as one of the signed-in person's.
func (p *Portal) requestFor(c *fiber.Ctx, pr *authz.Principal) (PrivacyRequest, error) {
	if token := c.Query("token"); token != "" {
		return p.privacy.Requests.ShowByToken(c.UserContext(), c.Params("id"), token)
	}
	if pr == nil {
		if p.visitorCookie(c) {
			return p.privacy.Requests.VisitorShow(c, c.Params("id"))
		}
		return PrivacyRequest{}, errs.E(errs.ErrUnauthenticated, "Sign in to see your privacy requests.")
	}
	return p.privacy.Requests.Show(c.UserContext(), *pr, c.Params("id"))
}

func (p *Portal) requestPage(c *fiber.Ctx) error {
	pg, pr, err := p.privacyPage(c, pathPrivacyData, "RequestTitle")
	if err != nil {
		return err
	}
	req, err := p.requestFor(c, pr)
	if err != nil {
		return err
	}
	pg.Request = &req
	if cert := req.Certificate; cert != nil {
		link := requestPath(req.ID) + "/certificate.json"
		if token := c.Query("token"); token != "" {
			link += "?token=" + url.QueryEscape(token)
		}
		lead := pg.L.T("CertificateLead", "Completed", formatDateTime(cert.CompletedAt))
		if req.Visitor {
			lead = pg.L.T("CertificateLeadVisitor", "Completed", formatDateTime(cert.CompletedAt))
		}
		verdict := pg.L.T("CertificateNotPassed")
		if cert.Passed {
			verdict = pg.L.T("CertificatePassed")
		}
		pg.Certificate = p.certificateView(pg.L, cert, lead, verdict, link)
	}
	pg.Stages = stagesOf(pg.L, req.Status)
	// A running request refreshes itself, without script.
	pg.Refresh = !finished(req.Status)
	return p.render(c, "request", pg)
}

func (p *Portal) certificateJSON(c *fiber.Ctx) error {
	var pr *authz.Principal
	if got, ok := authz.FromContext(c.UserContext()); ok {
		pr = &got
	}
	req, err := p.requestFor(c, pr)
	if err != nil {
		return err
	}
	if req.Certificate == nil {
		return errs.E(errs.ErrNotFound, "This request has no certificate (yet).")
	}
	setSecurityHeaders(c, false)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="erasure-certificate-`+req.ID+`.json"`)
	return c.Send(req.Certificate.JSON)
}

// certificateView is an erasure certificate as the "certificate" part
// shows it: its lead and verdict in the reader's words, the kept
// categories named and explained in the page's language, and the link
// that downloads it.
type certificateView struct {
	*Certificate
	Lead, Verdict string
	KeptNames     []string
	Link          string
}

// certificateView names and explains the kept categories of cert in the
// page's language.
func (p *Portal) certificateView(l *localizer, cert *Certificate, lead, verdict, link string) *certificateView {
	v := &certificateView{Certificate: cert, Lead: lead, Verdict: verdict, Link: link}
	for i, k := range cert.Kept {
		v.KeptNames = append(v.KeptNames, p.categoryName(l, k.Category))
		cert.Kept[i].Reason = p.erasureWhy(l, k.Category, k.Reason)
	}
	return v
}

// categoryName names a category in the page's language.
func (p *Portal) categoryName(l *localizer, key string) string {
	if c, ok := p.taxonomy[key]; ok {
		return policies.PlainWords(l, c).Name
	}
	return key
}

// erasureWhy says why an erasure keeps or anonymizes a category, in the
// page's language when the policy gives the registry's reason (whose
// translations the message files hold), in the policy's own words when it
// gives another.
func (p *Portal) erasureWhy(l *localizer, key, reason string) string {
	if c, ok := p.taxonomy[key]; ok && reason == c.Erasure.Reason {
		return policies.PlainWords(l, c).ErasureWhy
	}
	return reason
}

// erasureGroup is what deleting the account does to some categories.
type erasureGroup struct {
	Action string
	Items  []erasureLine
}

// erasureLine is one category in an erasureGroup.
type erasureLine struct {
	Name   string
	Items  int64
	Reason string
	Until  string
}

// deleteErrors maps the codes a refused deletion comes back with to their
// messages.
var deleteErrors = map[string]string{
	"confirm": "DeleteErrorConfirm",
	"reauth":  "DeleteErrorReauth",
	"refused": "DataErrorRefused",
}

func (p *Portal) deletePage(c *fiber.Ctx) error {
	ctx := c.UserContext()
	pg, pr, err := p.privacyPage(c, pathPrivacyData, "DeleteTitle")
	if err != nil {
		return err
	}
	var items []ErasureItem
	switch {
	case pr != nil:
		items, err = p.privacy.Requests.ErasurePreview(ctx, *pr)
	case p.visitorCookie(c):
		pg.VisitorCookie, pg.Title = true, pg.L.T("DataVisitorDeleteHeading")
		items, err = p.privacy.Requests.VisitorErasurePreview(c)
	default:
		return p.render(c, "delete", pg)
	}
	if err != nil {
		return fmt.Errorf("preview the erasure: %w", err)
	}
	groups := map[string]*erasureGroup{}
	for _, it := range items {
		g, ok := groups[it.Action]
		if !ok {
			g = &erasureGroup{Action: it.Action}
			groups[it.Action] = g
		}
		line := erasureLine{Name: p.categoryName(pg.L, it.Category), Items: it.Items}
		if it.Action != "delete" {
			line.Reason = p.erasureWhy(pg.L, it.Category, it.Reason)
			if period, from, ok := strings.Cut(it.Until, " from "); ok {
				line.Until = policies.RetentionWords(pg.L, period, from, "")
			}
		}
		// One line per category and reason, however many tables hold it.
		if i := slices.IndexFunc(g.Items, func(o erasureLine) bool {
			return o.Name == line.Name && o.Reason == line.Reason && o.Until == line.Until
		}); i >= 0 {
			g.Items[i].Items += line.Items
			continue
		}
		g.Items = append(g.Items, line)
	}
	for _, a := range []string{"delete", "anonymize", "keep", "review"} {
		if g, ok := groups[a]; ok {
			pg.Erasure = append(pg.Erasure, *g)
		}
	}
	if pr != nil {
		if err := p.privacy.Requests.CheckRecentSignIn(ctx, *pr); err != nil {
			if !errors.Is(err, errs.ErrForbidden) {
				return err
			}
			pg.Reauth, pg.SignOut = true, pathSignOut
		}
	}
	pg.Error = errorMessage(pg.L, deleteErrors, c.Query("error"))
	pg.DeleteAction = pathPrivacyDelete
	return p.render(c, "delete", pg)
}

func (p *Portal) deletePost(c *fiber.Ctx) error {
	if err := sameOrigin(c); err != nil {
		return err
	}
	if c.FormValue("confirm") != "on" {
		return c.Redirect(pathPrivacyDelete+"?error=confirm", fiber.StatusSeeOther)
	}
	pr, signedIn := authz.FromContext(c.UserContext())
	if !signedIn {
		return p.visitorFile(c, requestErasure, pathPrivacyDelete)
	}
	req, err := p.privacy.Requests.File(c.UserContext(), pr, requestErasure)
	switch {
	case errors.Is(err, errs.ErrForbidden):
		return c.Redirect(pathPrivacyDelete+"?error=reauth", fiber.StatusSeeOther)
	case err != nil:
		return err
	}
	return c.Redirect(requestPath(req.ID)+"?token="+url.QueryEscape(req.StatusToken), fiber.StatusSeeOther)
}

// errorMessage explains the error code a form sent the browser back
// with, by its message in codes; an unknown code, which comes from the
// URL, gets the generic message and is never echoed. No code, no
// message.
func errorMessage(l *localizer, codes map[string]string, code string) string {
	if code == "" {
		return ""
	}
	id, ok := codes[code]
	if !ok {
		id = "ErrorGeneric"
	}
	return l.T(id)
}

// finished reports whether a request has reached its end.
func finished(status string) bool {
	return status == requestCompleted || status == requestFailed || status == requestRejected
}

// stagesOf lays out a request's progress: received, verified, processing,
// and its end (completed, failed or rejected).
func stagesOf(l *localizer, status string) []requestStage {
	order := []string{requestReceived, requestVerified, requestProcessing, requestCompleted}
	end := requestCompleted
	if status == requestFailed || status == requestRejected {
		end = status
		order[3] = status
	}
	at := slices.Index(order, status)
	out := make([]requestStage, len(order))
	for i, s := range order {
		out[i] = requestStage{Label: l.T(statusMessageID(s)), Done: i < at || (i == at && s == end), Now: i == at && s != end}
	}
	return out
}

// statusMessageID names a request status's message.
func statusMessageID(status string) string {
	return "RequestStatus" + strings.ToUpper(status[:1]) + status[1:]
}

// sameOrigin refuses a form post another site made: the browser says so
// in Sec-Fetch-Site, or, for a browser that does not send it, in Origin.
// A post without either (a program, an old browser) passes; programs use
// the JSON API, whose session posts need the CSRF token.
func sameOrigin(c *fiber.Ctx) error {
	switch c.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return errs.E(errs.ErrForbidden, "This form can only be sent from this site's own pages.")
	}
	if o := c.Get(fiber.HeaderOrigin); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != c.Hostname() {
			return errs.E(errs.ErrForbidden, "This form can only be sent from this site's own pages.")
		}
	}
	return nil
}

// templateFuncs are the helpers every template may use.
var templateFuncs = template.FuncMap{
	// date and datetime print a time the same way in every language, as
	// ISO 8601 dates read everywhere; seconds adds the seconds, for runs
	// less than a minute apart.
	"date":     func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"datetime": formatDateTime,
	"seconds":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"title":    func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
	"status":   statusMessageID,
	"purpose":  func(name string) string { return purposeMessageID(name) + "Label" },
	// consentTable hands the consent report's partial a table's rows and
	// the id of the heading that names it.
	"consentTable": func(heading string, rows []ConsentRow) consentTable {
		return consentTable{Heading: heading, Rows: rows}
	},
	"deref": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
	"neg":   func(n int64) int64 { return -n },
	"int64": func(n int) int64 { return int64(n) },
	// pair hands a partial template the page and one item.
	"pair": func(p *page, c any) pagePair { return pagePair{P: p, C: c} },
	// filterOf is one filter of a form: its field, its label's message
	// and its choices.
	"filterOf": func(name, label string, options []option) filterField {
		return filterField{Name: name, Label: label, Options: options}
	},
}

// formatDateTime prints a time as the pages do, the same in every
// language.
func formatDateTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// pagePair is what a partial template gets: the page and its item.
type pagePair struct {
	P *page
	C any
}

// Num prints a count with the page language's digit grouping.
func (pg *page) Num(n int64) string {
	return message.NewPrinter(pg.L.Tag()).Sprintf("%d", n)
}

// Count says n of something with the message id's plural forms, the
// number grouped as the page language writes it.
func (pg *page) Count(id string, n int64) string {
	return pg.L.N(id, int(n), "Count", pg.Num(n))
}

// Size prints a size in bytes as the page language writes it (kB, MB).
func (pg *page) Size(n int64) string {
	pr := message.NewPrinter(pg.L.Tag())
	switch {
	case n >= 1<<20:
		return pr.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return pr.Sprintf("%.0f kB", float64(n)/(1<<10))
	}
	return pr.Sprintf("%d B", n)
}
