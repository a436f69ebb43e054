package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
)

// CreateBody is the body of POST /v1/privacy/requests.
type CreateBody struct {
	Type string `json:"type"`
	// Email and Reason file the request on behalf of a subject (dpo,
	// admin).
	Email  string `json:"email,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ExtendBody is the body of POST /v1/privacy/requests/{id}/extend.
type ExtendBody struct {
	Months int `json:"months"`
	// Reason may run over several lines, as the console's form allows.
	Reason string `json:"reason" text:"multiline"`
}

// RejectBody is the body of POST /v1/privacy/requests/{id}/reject.
type RejectBody struct {
	Reason string `json:"reason" text:"multiline"`
}

// RequestView is a request as the API shows it.
type RequestView struct {
	Request
	// DownloadURL is a signed link to the package of a completed access
	// request; it expires at DownloadExpiresAt.
	DownloadURL       string     `json:"download_url,omitempty"`
	DownloadExpiresAt *time.Time `json:"download_expires_at,omitempty"`
	// PackageExpiresAt is when the package itself is removed; a link
	// made later still works until then.
	PackageExpiresAt *time.Time      `json:"package_expires_at,omitempty"`
	Certificate      json.RawMessage `json:"certificate,omitempty"`
	Events           []Event         `json:"events,omitempty"`
}

// ListView is the body of GET /v1/privacy/requests.
type ListView struct {
	Requests []Request `json:"requests"`
}

type downloadQuery struct {
	Exp int64  `query:"exp"`
	Sig string `query:"sig"`
}

// Mount implements module.Module.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/privacy/requests", Tag: "privacy", Auth: true,
		Summary:     "File an access or erasure request",
		Description: "By the signed-in subject (erasure needs a sign-in within the last 15 minutes), or by a dpo or admin on behalf of the subject an email names, with a reason. Due one month from receipt.",
		Request:     CreateBody{},
		Responses:   map[int]any{201: RequestView{}, 400: nil, 403: nil},
	}, m.handleCreate)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/v1/privacy/requests", Tag: "privacy", Auth: true,
		Summary:   "List privacy requests: your own, or all for dpo and admin",
		Responses: map[int]any{200: ListView{}, 400: nil},
	}, m.handleList)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/v1/privacy/holdings", Tag: "privacy", Auth: true,
		Summary: "What Steward holds about you right now, by data category",
		Description: "For the signed-in caller: per category of personal data, how many rows of the stores hold a value of it " +
			"(the caller's own rows, and the anonymous browsing of the browsers they signed in on) and how many items modules keep " +
			"outside them, with where they are. The same counting an access export's contents follow.",
		Responses: map[int]any{200: HoldingsView{}, 401: nil},
	}, m.handleHoldings)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/v1/privacy/requests/:id", Tag: "privacy", Auth: true,
		Summary:   "A privacy request with its audit trail, download link or erasure certificate",
		Responses: map[int]any{200: RequestView{}, 404: nil},
	}, m.handleGet)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/privacy/requests/:id/extend", Tag: "privacy", Auth: true,
		Summary:   "Extend a request's deadline by up to two months, with the reason (dpo, admin)",
		Request:   ExtendBody{},
		Responses: map[int]any{200: RequestView{}, 403: nil, 404: nil, 409: nil},
	}, m.handleExtend)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/privacy/requests/:id/reject", Tag: "privacy", Auth: true,
		Summary: "Reject a request that has not started, with the reason (dpo, admin)",
		Description: "For a request that is manifestly unfounded or excessive (Art. 12(5) GDPR), or whose subject " +
			"could not be identified. The reason, required, goes into the request's trail and the admin log. A request " +
			"being processed or already closed answers 409.",
		Request:   RejectBody{},
		Responses: map[int]any{200: RequestView{}, 400: nil, 403: nil, 404: nil, 409: nil},
	}, m.handleReject)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/privacy/requests/:id/retry", Tag: "privacy", Auth: true,
		Summary: "Send a failed request back to the workers (dpo, admin)",
		Description: "The request is verified again with its failure cleared and runs anew, with a fresh count of " +
			"attempts; an erasure runs its steps again and gets a new certificate. The retry is in the request's trail " +
			"and the admin log. A request that has not failed answers 409.",
		Responses: map[int]any{200: RequestView{}, 403: nil, 404: nil, 409: nil},
	}, m.handleRetry)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/v1/privacy/requests/:id/download", Tag: "privacy",
		Summary:   "Download an access package through its signed, expiring link",
		Query:     downloadQuery{},
		Responses: map[int]any{200: web.Body{ContentType: "application/zip"}, 403: nil, 404: nil},
	}, m.handleDownload)
}

func (m *Module) handleCreate(c *fiber.Ctx) error {
	p, body, err := authz.RequireJSON[CreateBody](c)
	if err != nil {
		return err
	}
	req, err := m.Create(c.UserContext(), p, NewRequest{Type: body.Type, Email: body.Email, Reason: body.Reason})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(m.view(req, nil))
}

func (m *Module) handleList(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	// The list takes no parameters; paging ones are refused, not ignored.
	if err := web.ParseQuery(c, &struct{}{}); err != nil {
		return err
	}
	list, err := m.List(c.UserContext(), p)
	if err != nil {
		return err
	}
	if list == nil {
		list = []Request{}
	}
	return c.JSON(ListView{Requests: list})
}

func (m *Module) handleHoldings(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	if err := web.ParseQuery(c, &struct{}{}); err != nil {
		return err
	}
	h, err := m.OwnHoldings(c.UserContext(), p)
	if err != nil {
		return err
	}
	return c.JSON(HoldingsView{Holdings: h})
}

func (m *Module) handleGet(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	v, err := m.Show(c.UserContext(), p, c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// Overview returns the principal's own requests as the API shows one,
// without their trails: download links for the completed access requests
// whose packages are kept.
func (m *Module) Overview(ctx context.Context, p authz.Principal) ([]RequestView, error) {
	list, err := m.List(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]RequestView, 0, len(list))
	for _, req := range list {
		if req.UserID != p.UserID {
			// Staff see the requests they may audit; the pages show
			// a person their own.
			continue
		}
		out = append(out, m.view(req, nil))
	}
	return out, nil
}

// Show returns a request the principal may see, with its trail and, for a
// completed access request whose package is kept, a fresh download link:
// what GET /v1/privacy/requests/{id} answers.
func (m *Module) Show(ctx context.Context, p authz.Principal, id string) (RequestView, error) {
	req, err := m.Get(ctx, p, id)
	if err != nil {
		return RequestView{}, err
	}
	events, err := m.Events(ctx, req.ID)
	if err != nil {
		return RequestView{}, err
	}
	return m.view(req, events), nil
}

func (m *Module) handleExtend(c *fiber.Ctx) error {
	p, body, err := authz.RequireJSON[ExtendBody](c)
	if err != nil {
		return err
	}
	req, err := m.Extend(c.UserContext(), p, c.Params("id"), body.Months, body.Reason)
	if err != nil {
		return err
	}
	return c.JSON(m.view(req, nil))
}

func (m *Module) handleReject(c *fiber.Ctx) error {
	p, body, err := authz.RequireJSON[RejectBody](c)
	if err != nil {
		return err
	}
	req, err := m.Reject(c.UserContext(), p, c.Params("id"), body.Reason)
	if err != nil {
		return err
	}
	return c.JSON(m.view(req, nil))
}

func (m *Module) handleRetry(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	req, err := m.Retry(c.UserContext(), p, c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(m.view(req, nil))
}

// LinkActor names a signed download link in the trail of the packages
// it downloads, when no one was signed in.
const LinkActor = "link"

// handleDownload serves a package through a signed link. The link is the
// authority, as for assets: it can be opened where no session is.
func (m *Module) handleDownload(c *fiber.Ctx) error {
	id := c.Params("id")
	var q downloadQuery
	if err := c.QueryParser(&q); err != nil || q.Sig == "" {
		return errs.E(errs.ErrForbidden, "the download link is not valid")
	}
	if !m.verifyDownload(id, q.Exp, q.Sig) {
		return errs.E(errs.ErrForbidden, "the download link is not valid or has expired")
	}
	ctx := c.UserContext()
	req, err := m.load(ctx, id)
	if err != nil {
		return err
	}
	f, err := m.OpenPackage(req)
	if err != nil {
		return err
	}
	actor := LinkActor
	if p, ok := authz.FromContext(ctx); ok {
		actor = p.UserID
	}
	if err := m.addEvent(ctx, m.deps.DB, &req, "downloaded", actor, ""); err != nil {
		f.Close()
		return err
	}
	m.log.Info("privacy package downloaded", slog.String("request_id", req.ID))
	c.Set(fiber.HeaderContentType, "application/zip")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="steward-data-%s.zip"`, req.ID))
	c.Set(fiber.HeaderCacheControl, "no-store")
	// Fiber closes the file once the body has been sent.
	return c.SendStream(f, int(req.PackageSize))
}

func (m *Module) view(req Request, events []Event) RequestView {
	v := RequestView{Request: req, Certificate: req.CertificateJSON(), Events: events}
	if req.Type == TypeAccess && req.Status == StatusCompleted && req.PackagePath != "" {
		u, exp := m.DownloadURL(req.ID)
		v.DownloadURL, v.DownloadExpiresAt = u, &exp
		if req.CompletedAt != nil && m.cfg.PackageTTL > 0 {
			gone := req.CompletedAt.Add(m.cfg.PackageTTL).UTC()
			v.PackageExpiresAt = &gone
		}
	}
	return v
}
