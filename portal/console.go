package portal

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
)

// Console is what the console (/console) reads, for the people who run
// Steward's governance: data protection officers, administrators,
// analysts and support. Each function is the one its API route or command
// uses; cmd/steward fills it. A nil Console leaves /console unmounted.
type Console struct {
	// DataMap returns every column the live stores hold, with its category
	// and the policy's rules for it (GET /v1/audit/datamap).
	DataMap func(ctx context.Context) ([]DataMapColumn, error)
	// Record writes the record of processing activities (GDPR Art. 30) as
	// "markdown" or "html", or the data map's columns as "csv" (`steward
	// datamap --format ...`), of the columns f keeps.
	Record func(ctx context.Context, w io.Writer, format string, f DataMapFilter) error
	// Policy says which policies are in force and what applying the
	// bundle folder's content would change.
	Policy func(ctx context.Context) (PolicyView, error)
	// ApplyPolicy puts the bundle folder's policies in force when the
	// folder still holds revision, and returns it; it wraps
	// ErrPolicyChanged when the folder changed, and an invalid-argument
	// error when the bundle fails its checks. The admin log records it.
	ApplyPolicy func(ctx context.Context, p authz.Principal, revision string) (string, error)
	// Consent reports how consent was given between from and to (the
	// consent module's Report, with the policy's minimum group size).
	Consent func(ctx context.Context, from, to time.Time) (ConsentReport, error)
	// AuditRuns returns the latest stored runs of the audit, newest
	// first, at most limit (GET /v1/audit/runs).
	AuditRuns func(ctx context.Context, limit int) ([]AuditRun, error)
	// RunAudit runs the audit and stores it as a run of p (POST
	// /v1/audit/runs).
	RunAudit func(ctx context.Context, p authz.Principal) (AuditRun, error)
	// Requests returns every open privacy request and the newest finished
	// ones that f keeps, accounts' and visitors' alike, for a role that
	// may list the requests about anyone (dpo and admin, as on
	// GET /v1/privacy/requests).
	Requests func(ctx context.Context, p authz.Principal, f RequestFilter) ([]QueuedRequest, error)
	// Request returns one request with its trail, and with its package's
	// counts or its certificate when it has one
	// (GET /v1/privacy/requests/{id}).
	Request func(ctx context.Context, p authz.Principal, id string) (QueuedRequest, error)
	// Extend, Reject and Retry act on a request as
	// POST /v1/privacy/requests/{id}/extend, /reject and /retry do.
	Extend func(ctx context.Context, p authz.Principal, id string, months int, reason string) error
	Reject func(ctx context.Context, p authz.Principal, id, reason string) error
	Retry  func(ctx context.Context, p authz.Principal, id string) error
	// AttributionChoices are what the attribution workspace's form offers.
	AttributionChoices AttributionChoices
	// Attribution runs the attribution report q asks for as GET
	// /v1/analytics/attribution runs it for p (the same access question,
	// the same folding of small groups, the same limits), with the
	// conversions of its period per day or week. A bad query is an
	// errs.ValidationError naming the route's query parameters; a
	// grouping p may not see is errs.ErrForbidden; too many reports at
	// once errs.ErrRateLimited, one past the limits errs.ErrUnavailable.
	Attribution func(ctx context.Context, p authz.Principal, q AttributionQuery) (AttributionReport, error)
	// AttributionCSV writes the rows of the report q asks for as CSV, as
	// the route's format=csv does, with Attribution's errors.
	AttributionCSV func(ctx context.Context, w io.Writer, p authz.Principal, q AttributionQuery) error
}

// complete reports whether every function is set.
func (co *Console) complete() bool {
	return co.DataMap != nil && co.Record != nil && co.Requests != nil && co.Request != nil &&
		co.Extend != nil && co.Reject != nil && co.Retry != nil && co.Policy != nil && co.ApplyPolicy != nil &&
		co.Consent != nil && co.AuditRuns != nil && co.RunAudit != nil && co.Attribution != nil && co.AttributionCSV != nil &&
		len(co.AttributionChoices.Models) > 0 && len(co.AttributionChoices.Dimensions) > 0
}

// DataMapColumn is one column of the data map as the console shows it.
type DataMapColumn struct {
	Store, Table, Column, Module string
	// Category is the column's data category key; CategoryName its name.
	Category, CategoryName string
	Personal, Subject      bool
	// Purposes are the keys of the category's purposes.
	Purposes []string
	// Basis names the legal basis, Article cites it.
	Basis, Article string
	// Retention says the retention rule ("P13M from collected at, then
	// delete").
	Retention string
	// Erasure is what an erasure does (delete, anonymize, keep, review),
	// ErasureWhy why, ErasureUntil until when what stays.
	Erasure, ErasureWhy, ErasureUntil string
	// Exported is true when an access export includes the column;
	// ExportWhy says why, or why not.
	Exported  bool
	ExportWhy string
}

// Console paths.
const (
	pathConsole               = "/console"
	pathConsoleDataMap        = "/console/datamap"
	pathConsoleRecord         = "/console/datamap/record.:format"
	pathConsoleAttribution    = "/console/attribution"
	pathConsoleAttributionCSV = "/console/attribution.csv"
)

// consoleSection is one part of the console and who may use it: the
// access question its API route asks.
type consoleSection struct {
	ID   string
	Href string
	Need Access
}

// consoleSections are the console's parts, in the order shown.
var consoleSections = []consoleSection{
	{ID: "Requests", Href: pathConsoleRequests, Need: queueAccess},
	{ID: "Audit", Href: pathConsoleAudit, Need: Access{Action: authz.ActionAudit, Every: true}},
	{ID: "DataMap", Href: pathConsoleDataMap, Need: Access{Action: authz.ActionAudit, Every: true}},
	{ID: "Consent", Href: pathConsoleConsent, Need: Access{Action: authz.ActionList, Categories: []string{"user.consent.record"}}},
	{ID: "Attribution", Href: pathConsoleAttribution, Need: attributionNeed()},
	{ID: "Policy", Href: pathConsolePolicy, Need: Access{Action: authz.ActionAudit, Every: true}},
}

// consoleNeeds returns the questions of the console's sections: a role
// may use the console when the policy answers yes to one.
func consoleNeeds() []Access {
	out := make([]Access, len(consoleSections))
	for i, s := range consoleSections {
		out[i] = s.Need
	}
	return out
}

// mountConsole adds the console's routes.
func (p *Portal) mountConsole(r fiber.Router, doc web.Documenter) {
	html := map[int]any{200: web.Body{ContentType: fiber.MIMETextHTMLCharsetUTF8}, 303: nil, 403: nil}
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsole, Tag: tag,
		Summary: "The console: the parts of Steward's governance the signed-in role may use",
		Description: "Signed out, `303` to the sign-in page, which returns here. A role the access policy lets use " +
			"no part of the console answers 403.",
		Responses: html,
	}, p.consoleHome)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsoleDataMap, Tag: tag,
		Summary: "The data map browser: every stored column with its category, purposes, legal basis, retention, " +
			"erasure and export rule",
		Description: "Filters in the query, each optional: `store`, `table`, `category` (a key, or the start of " +
			"one: `user.financial`), `purpose` (a purpose key). Needs the right to audit every category, like " +
			"`GET /v1/audit/datamap`.",
		Responses: html,
	}, p.consoleDataMap)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsoleRecord, Tag: tag,
		Summary: "The record of processing activities (Art. 30) to download: `record.md`, `record.html`, or " +
			"`record.csv` (the data map's columns, with the browser's filters)",
		Responses: map[int]any{200: web.Body{ContentType: "text/markdown"}, 303: nil, 403: nil, 404: nil},
	}, p.consoleRecord)
	p.mountConsolePolicy(r, doc)
	p.mountConsoleConsent(r, doc)
	p.mountConsoleAudit(r, doc)
	p.mountConsoleRequests(r, doc)
	p.mountAttribution(r, doc)
}

// consolePage starts a console page for a principal allowed to use the
// section current ("" for the console's home): its language, who is
// signed in, and the sections their role may use. Signed out, the browser
// is sent to sign in and come back (done is true then).
func (p *Portal) consolePage(c *fiber.Ctx, current, titleID string) (pg *page, pr authz.Principal, done bool, err error) {
	pr, ok := authz.FromContext(c.UserContext())
	if !ok {
		return nil, pr, true, c.Redirect(pathHome+"?"+url.Values{web.ParamNext: {c.OriginalURL()}}.Encode(), fiber.StatusSeeOther)
	}
	acc, err := p.account(c.UserContext(), pr.UserID)
	if err != nil {
		return nil, pr, false, fmt.Errorf("read the signed-in account: %w", err)
	}
	l := p.languageFor(c, &acc)
	pg = p.newPage(c, l)
	pg.Title = l.T(titleID)
	pg.User, pg.RoleLabel = &acc, roleLabel(l, acc.Role)
	pg.CSRF, pg.CSRFField, pg.SignOut = p.csrfToken(c), fieldCSRF, pathSignOut
	pg.Wide = true
	allowedHere, sections := current == "", 0
	pg.Nav = []navItem{{Href: pathConsole, Label: l.T("ConsoleNavHome"), Current: current == ""}}
	for _, s := range consoleSections {
		ok, err := p.allowed(c.UserContext(), pr, s.Need)
		if err != nil {
			return nil, pr, false, err
		}
		if !ok {
			continue
		}
		allowedHere, sections = allowedHere || s.Href == current, sections+1
		pg.Nav = append(pg.Nav, navItem{Href: s.Href, Label: l.T("Console" + s.ID + "Title"), Current: s.Href == current})
		pg.ConsoleLinks = append(pg.ConsoleLinks, shownLink{Title: l.T("Console" + s.ID + "Title"), Text: l.T("Console" + s.ID + "Text"), Href: s.Href})
	}
	if !allowedHere || sections == 0 {
		return nil, pr, false, errs.E(errs.ErrForbidden, "Your role may not use this part of the console.")
	}
	return pg, pr, false, nil
}

func (p *Portal) consoleHome(c *fiber.Ctx) error {
	pg, _, done, err := p.consolePage(c, "", "ConsoleTitle")
	if done || err != nil {
		return err
	}
	return p.render(c, "console", pg)
}

// DataMapFilter is the data map browser's query: the columns of a store,
// a table, a category (with the categories under it) and a purpose. An
// empty field keeps every column.
type DataMapFilter struct {
	Store, Table, Category, Purpose string
}

func filterOf(c *fiber.Ctx) DataMapFilter {
	return DataMapFilter{
		Store: c.Query("store"), Table: c.Query("table"),
		Category: c.Query("category"), Purpose: c.Query("purpose"),
	}
}

// Keeps reports whether the filter keeps a column of store.table in
// category with purposes. A category keeps the categories under it.
func (f DataMapFilter) Keeps(store, table, category string, purposes []string) bool {
	return (f.Store == "" || store == f.Store) &&
		(f.Table == "" || table == f.Table) &&
		(f.Category == "" || category == f.Category || strings.HasPrefix(category, f.Category+".")) &&
		(f.Purpose == "" || slices.Contains(purposes, f.Purpose))
}

// query is the filter as a query string, "" when it keeps everything.
func (f DataMapFilter) query() string {
	v := url.Values{}
	for k, s := range map[string]string{"store": f.Store, "table": f.Table, "category": f.Category, "purpose": f.Purpose} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// dataMapView is the data map browser's content.
type dataMapView struct {
	Filter  DataMapFilter
	Columns []DataMapColumn
	Total   int
	// The filters' choices, from the whole map.
	Stores, Tables, Categories, Purposes []option
	// Query is the filter for the downloads' links.
	Query string
}

// filterField is one filter of the data map browser's form.
type filterField struct {
	Name, Label string
	Options     []option
}

// option is one choice of a filter.
type option struct {
	Value, Label string
	Selected     bool
}

func optionsOf(values []string, selected string, label func(string) string) []option {
	slices.Sort(values)
	values = slices.Compact(values)
	out := make([]option, len(values))
	for i, v := range values {
		out[i] = option{Value: v, Label: label(v), Selected: v == selected}
	}
	return out
}

func (p *Portal) consoleDataMap(c *fiber.Ctx) error {
	pg, _, done, err := p.consolePage(c, pathConsoleDataMap, "ConsoleDataMapTitle")
	if done || err != nil {
		return err
	}
	all, err := p.console.DataMap(c.UserContext())
	if err != nil {
		return fmt.Errorf("read the data map: %w", err)
	}
	f := filterOf(c)
	v := &dataMapView{Filter: f, Total: len(all), Query: f.query()}
	var stores, tables, cats, purposes []string
	names := map[string]string{}
	for _, col := range all {
		stores, tables, cats = append(stores, col.Store), append(tables, col.Table), append(cats, col.Category)
		purposes = append(purposes, col.Purposes...)
		names[col.Category] = col.CategoryName
		if f.Keeps(col.Store, col.Table, col.Category, col.Purposes) {
			v.Columns = append(v.Columns, col)
		}
	}
	same := func(s string) string { return s }
	v.Stores, v.Tables = optionsOf(stores, f.Store, same), optionsOf(tables, f.Table, same)
	v.Categories = optionsOf(cats, f.Category, func(k string) string { return names[k] + " (" + k + ")" })
	v.Purposes = optionsOf(purposes, f.Purpose, same)
	pg.DataMap = v
	return p.render(c, "console-datamap", pg)
}

// recordFormats maps the record's file extensions to the formats Record
// writes and their content types.
var recordFormats = map[string][2]string{
	"md":   {"markdown", "text/markdown; charset=utf-8"},
	"html": {"html", fiber.MIMETextHTMLCharsetUTF8},
	"csv":  {"csv", "text/csv; charset=utf-8"},
}

func (p *Portal) consoleRecord(c *fiber.Ctx) error {
	_, _, done, err := p.consolePage(c, pathConsoleDataMap, "ConsoleDataMapTitle")
	if done || err != nil {
		return err
	}
	ext := c.Params("format")
	format, ok := recordFormats[ext]
	if !ok {
		return errs.E(errs.ErrNotFound, "The record is offered as record.md, record.html and record.csv.")
	}
	var buf bytes.Buffer
	if err := p.console.Record(c.UserContext(), &buf, format[0], filterOf(c)); err != nil {
		return fmt.Errorf("write the record of processing: %w", err)
	}
	setSecurityHeaders(c, false)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, format[1])
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="record-of-processing.`+ext+`"`)
	return c.Send(buf.Bytes())
}
