package portal

import (
	"errors"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
)

// The requests queue's paths.
const (
	pathConsoleRequests    = "/console/requests"
	pathConsoleRequest     = "/console/requests/:id"
	pathConsoleRequestCert = "/console/requests/:id/certificate.json"
	pathConsoleExtend      = "/console/requests/:id/extend"
	pathConsoleReject      = "/console/requests/:id/reject"
	pathConsoleRetry       = "/console/requests/:id/retry"
)

// dueSoonDays is how close a due date is for the queue to put its
// request right after the overdue ones: the audit warns about requests
// due within a week, too.
const dueSoonDays = 7

// RequestFilter is the requests queue's query: requests of one status
// and one type. An empty field keeps every one.
type RequestFilter struct {
	Status, Type string
}

// QueuedRequest is a privacy request as the console shows it to the
// staff who answer it.
type QueuedRequest struct {
	PrivacyRequest
	// Email is the subject's address; empty for a visitor's request,
	// which VisitorID's browser filed.
	Email, VisitorID string
	// OnBehalf is true when staff filed the request for the subject;
	// Reason says why.
	OnBehalf bool
	Reason   string
	// ExtensionReason says why the deadline was extended; empty while it
	// was not.
	ExtensionReason string
	// Package counts what a completed access request's package holds;
	// nil without one (Request only).
	Package *PackageCounts
}

// PackageCounts is what an access package holds, from its manifest:
// counts, never contents.
type PackageCounts struct {
	GeneratedAt time.Time
	// Files counts the package's data files; Places groups them by the
	// table or module they come from.
	Files  int
	Places []PackagePlace
	// Included and Withheld count the data categories the package
	// includes and withholds.
	Included, Withheld int
}

// PackagePlace is what a package holds from one table of a store, or
// from one module's own storage (Table empty).
type PackagePlace struct {
	Store, Module, Table string
	// Formats are the formats of its files (json, jsonl, csv, ...).
	Formats []string
	Files   int
	// Rows counts its records; a table written in several formats counts
	// its rows once.
	Rows int64
}

// Who took a step of a request's trail (RequestStep.ActorKind).
const (
	ActorSubject = "subject"
	ActorSystem  = "system"
	ActorVisitor = "visitor"
	ActorLink    = "link"
	ActorStaff   = "staff"
)

// actorKinds are the kinds of actor the console names by a message; a
// staff member is named by their address.
var actorKinds = []string{ActorSubject, ActorSystem, ActorVisitor, ActorLink}

// queueAccess is the question the requests queue asks: listing the
// requests about anyone, as GET /v1/privacy/requests does for the roles
// that see every request.
var queueAccess = Access{Action: authz.ActionList, Categories: []string{"user.privacy_request"}}

// actAccess is the question extending, rejecting and retrying ask.
var actAccess = Access{Action: authz.ActionAudit, Categories: []string{"user.privacy_request"}}

// requestTypes are the types of request, in the order the filter offers
// them.
var requestTypes = []string{requestAccess, requestErasure}

// extendMonths are the extensions the deadline allows (Art. 12(3)).
var extendMonths = []int{1, 2}

// mountConsoleRequests adds the requests queue's routes.
func (p *Portal) mountConsoleRequests(r fiber.Router, doc web.Documenter) {
	html := map[int]any{200: web.Body{ContentType: fiber.MIMETextHTMLCharsetUTF8}, 303: nil, 400: nil, 403: nil}
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsoleRequests, Tag: tag,
		Summary: "The requests queue: every privacy request with its status, due date and the days left, the most urgent first",
		Description: "Requests not answered yet (failed ones too) first: overdue, then due within 7 days, then the rest " +
			"by due date; then the newest answered ones (completed, rejected). Filters in the query, each optional: " +
			"`status` and `type`. Needs the right to list every request, like `GET /v1/privacy/requests` for dpo and admin.",
		Responses: html,
	}, p.consoleRequests)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsoleRequest, Tag: tag,
		Summary: "One privacy request with its trail, its package's counts or its certificate, and the forms that extend, " +
			"reject or retry it",
		Description: "`?done=extended|rejected|retried` confirms an action just taken; `?error=<code>` explains one refused.",
		Responses:   map[int]any{200: web.Body{ContentType: fiber.MIMETextHTMLCharsetUTF8}, 303: nil, 403: nil, 404: nil},
	}, p.consoleRequest)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsoleRequestCert, Tag: tag,
		Summary:   "The certificate of an erasure, as JSON to keep",
		Responses: map[int]any{200: web.Body{ContentType: fiber.MIMEApplicationJSON}, 303: nil, 403: nil, 404: nil},
	}, p.consoleCertificate)
	for _, a := range []struct {
		path, form, done, summary, fields string
		act                               consoleAct
	}{
		{pathConsoleExtend, "extend", "extended", "Extend a request's deadline by one or two months, with the reason (a form post)",
			"`months` (1 or 2), `reason` and", p.extend},
		{pathConsoleReject, "reject", "rejected", "Reject a request that has not started, with the reason (a form post)",
			"`reason` and", p.reject},
		{pathConsoleRetry, "retry", "retried", "Send a failed request back to the workers (a form post)",
			"none but", p.retry},
	} {
		web.Route(r, doc, web.RouteDoc{
			Method: fiber.MethodPost, Path: a.path, Tag: tag,
			Summary: a.summary,
			Description: "Form fields: " + a.fields + " `csrf_token`. Answers `303` to the request's page with `?done=" + a.done +
				"`, or `?error=` when a field is missing or wrong (`" + a.form + "-<field>`) or the request's state does not " +
				"allow it (`conflict`); signed out, `303` to the sign-in page. A role that may not act on requests answers " +
				"403, and so does a post from another site.",
			Responses: map[int]any{303: nil, 403: nil, 404: nil},
		}, p.consoleAction(a.form, a.done, a.act))
	}
}

// consoleRequestPath is the console's page of one request.
func consoleRequestPath(id string) string {
	return pathConsoleRequests + "/" + url.PathEscape(id)
}

// queueRow is one request of the queue with how urgent it is.
type queueRow struct {
	QueuedRequest
	// Urgency is overdue, soon (due within dueSoonDays), later or
	// answered.
	Urgency string
	// DaysLeft counts the calendar days (UTC) to the due date, negative
	// once it passed.
	DaysLeft int64
}

// Urgencies, most urgent first.
const (
	urgencyOverdue  = "overdue"
	urgencySoon     = "soon"
	urgencyLater    = "later"
	urgencyAnswered = "answered"
)

var urgencies = []string{urgencyOverdue, urgencySoon, urgencyLater, urgencyAnswered}

// answered reports whether a request has its answer: completed or
// rejected. A failed request has none yet; its deadline still runs.
func answered(status string) bool {
	return status == requestCompleted || status == requestRejected
}

// rowOf places a request in the queue at now.
func rowOf(r QueuedRequest, now time.Time) queueRow {
	day := func(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }
	row := queueRow{QueuedRequest: r, DaysLeft: int64(day(r.DueAt).Sub(day(now)).Hours() / 24)}
	switch {
	case answered(r.Status):
		row.Urgency = urgencyAnswered
	case r.DueAt.Before(now):
		row.Urgency = urgencyOverdue
	case row.DaysLeft <= dueSoonDays:
		row.Urgency = urgencySoon
	default:
		row.Urgency = urgencyLater
	}
	return row
}

// orderQueue puts the requests not answered yet first, overdue, due soon
// and the rest, each by due date; then the answered ones, newest first.
func orderQueue(rows []queueRow) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if ua, ub := slices.Index(urgencies, a.Urgency), slices.Index(urgencies, b.Urgency); ua != ub {
			return ua < ub
		}
		if a.Urgency == urgencyAnswered {
			if !a.ReceivedAt.Equal(b.ReceivedAt) {
				return a.ReceivedAt.After(b.ReceivedAt)
			}
		} else if !a.DueAt.Equal(b.DueAt) {
			return a.DueAt.Before(b.DueAt)
		}
		return a.ID < b.ID
	})
}

// requestsView is the requests queue's content.
type requestsView struct {
	Statuses, Types []option
	Rows            []queueRow
	// Open, Overdue and Soon count the requests shown not answered yet,
	// those overdue and those due within dueSoonDays.
	Open, Overdue, Soon int
}

func (p *Portal) consoleRequests(c *fiber.Ctx) error {
	pg, pr, done, err := p.consolePage(c, pathConsoleRequests, "ConsoleRequestsTitle")
	if done || err != nil {
		return err
	}
	f := RequestFilter{Status: c.Query("status"), Type: c.Query("type")}
	list, err := p.console.Requests(c.UserContext(), pr, f)
	if err != nil {
		return err
	}
	v := &requestsView{}
	now := p.now()
	for _, r := range list {
		row := rowOf(r, now)
		v.Rows = append(v.Rows, row)
		if row.Urgency != urgencyAnswered {
			v.Open++
		}
		switch row.Urgency {
		case urgencyOverdue:
			v.Overdue++
		case urgencySoon:
			v.Soon++
		}
	}
	orderQueue(v.Rows)
	for _, s := range requestStatuses {
		v.Statuses = append(v.Statuses, option{Value: s, Label: pg.L.T("ConsoleStatus_" + s), Selected: s == f.Status})
	}
	for _, t := range requestTypes {
		v.Types = append(v.Types, option{Value: t, Label: pg.L.T("ConsoleType_" + t), Selected: t == f.Type})
	}
	pg.Queue = v
	return p.render(c, "console-requests", pg)
}

// requestView is the console's page of one request.
type requestView struct {
	queueRow
	// CanExtend, CanReject and CanRetry offer the actions the request's
	// state and the caller's role allow.
	CanExtend, CanReject, CanRetry bool
	Months                         []option
	// Done confirms the action just taken; Error explains one refused,
	// and ErrorField is its code, which names the form's field it was
	// about ("extend-reason").
	Done, Error, ErrorField string
}

// consoleDone are the confirmations of an action taken, by the code the
// action sends the browser back with.
var consoleDone = map[string]string{
	"extended": "ConsoleDoneExtended",
	"rejected": "ConsoleDoneRejected",
	"retried":  "ConsoleDoneRetried",
}

// consoleErrors are the explanations of an action refused, by code: the
// form and the field it was about, or the request's state.
var consoleErrors = map[string]string{
	"extend-reason": "ConsoleErrorExtendReason",
	"extend-months": "ConsoleErrorExtendMonths",
	"reject-reason": "ConsoleErrorRejectReason",
	"conflict":      "ConsoleErrorConflict",
}

func (p *Portal) consoleRequest(c *fiber.Ctx) error {
	pg, pr, done, err := p.consolePage(c, pathConsoleRequests, "ConsoleRequestTitle")
	if done || err != nil {
		return err
	}
	ctx := c.UserContext()
	req, err := p.console.Request(ctx, pr, c.Params("id"))
	if err != nil {
		return err
	}
	mayAct, err := p.allowed(ctx, pr, actAccess)
	if err != nil {
		return err
	}
	v := &requestView{queueRow: rowOf(req, p.now())}
	v.CanExtend = mayAct && !answered(req.Status) && req.ExtensionReason == ""
	v.CanReject = mayAct && (req.Status == requestReceived || req.Status == requestVerified)
	v.CanRetry = mayAct && req.Status == requestFailed
	for _, n := range extendMonths {
		v.Months = append(v.Months, option{Value: strconv.Itoa(n), Label: pg.Count("ConsoleExtendMonthsN", int64(n)), Selected: n == extendMonths[0]})
	}
	if id, ok := consoleDone[c.Query("done")]; ok {
		v.Done = pg.L.T(id)
	}
	if id, ok := consoleErrors[c.Query("error")]; ok {
		v.Error, v.ErrorField = pg.L.T(id), c.Query("error")
	}
	pg.Title = pg.L.T("ConsoleRequestTitle_"+req.Type) + " " + req.ID
	pg.Queued = v
	if cert := req.Certificate; cert != nil {
		verdict := pg.L.T("ConsoleCertificateNotPassed")
		if cert.Passed {
			verdict = pg.L.T("ConsoleCertificatePassed")
		}
		lead := pg.L.T("ConsoleCertificateLead", "Completed", formatDateTime(cert.CompletedAt))
		pg.Certificate = p.certificateView(pg.L, cert, lead, verdict, consoleRequestPath(req.ID)+"/certificate.json")
	}
	return p.render(c, "console-request", pg)
}

func (p *Portal) consoleCertificate(c *fiber.Ctx) error {
	_, pr, done, err := p.consolePage(c, pathConsoleRequests, "ConsoleRequestTitle")
	if done || err != nil {
		return err
	}
	req, err := p.console.Request(c.UserContext(), pr, c.Params("id"))
	if err != nil {
		return err
	}
	if req.Certificate == nil {
		return errs.E(errs.ErrNotFound, "This request has no certificate.")
	}
	setSecurityHeaders(c, false)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="erasure-certificate-`+req.ID+`.json"`)
	return c.Send(req.Certificate.JSON)
}

// consoleAct is one action on a request, taken by pr.
type consoleAct func(c *fiber.Ctx, pr authz.Principal, id string) error

// consoleAction handles the form post of an action: from this site, by a
// signed-in role that may use the queue. Taken, the request's page
// confirms it with done; a field of the form missing or wrong, or a
// request whose state does not allow the action, goes back to the page to
// be explained, as "<form>-<field>" or "conflict". Anything else is an
// error.
func (p *Portal) consoleAction(form, done string, act consoleAct) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := sameOrigin(c); err != nil {
			return err
		}
		id := c.Params("id")
		back := consoleRequestPath(id)
		pr, ok := authz.FromContext(c.UserContext())
		if !ok {
			return c.Redirect(pathHome+"?"+url.Values{web.ParamNext: {back}}.Encode(), fiber.StatusSeeOther)
		}
		ok, err := p.allowed(c.UserContext(), pr, queueAccess)
		if err != nil {
			return err
		}
		if !ok {
			return errs.E(errs.ErrForbidden, "Your role may not use this part of the console.")
		}
		err = act(c, pr, id)
		var v *errs.ValidationError
		switch {
		case err == nil:
			return c.Redirect(back+"?done="+done, fiber.StatusSeeOther)
		case errors.As(err, &v) && len(v.Errors) > 0:
			return c.Redirect(back+"?error="+form+"-"+v.Errors[0].Field, fiber.StatusSeeOther)
		case errors.Is(err, errs.ErrConflict):
			return c.Redirect(back+"?error=conflict", fiber.StatusSeeOther)
		}
		return err
	}
}

func (p *Portal) extend(c *fiber.Ctx, pr authz.Principal, id string) error {
	months, err := strconv.Atoi(c.FormValue("months"))
	if err != nil || !slices.Contains(extendMonths, months) {
		return errs.Invalid("months", "oneof", "Extend by one or two months.")
	}
	return p.console.Extend(c.UserContext(), pr, id, months, c.FormValue("reason"))
}

func (p *Portal) reject(c *fiber.Ctx, pr authz.Principal, id string) error {
	return p.console.Reject(c.UserContext(), pr, id, c.FormValue("reason"))
}

func (p *Portal) retry(c *fiber.Ctx, pr authz.Principal, id string) error {
	return p.console.Retry(c.UserContext(), pr, id)
}
