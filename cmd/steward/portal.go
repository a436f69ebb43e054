package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/analytics/enrich"
	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/governance/audit"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ipaddr"
	"github.com/stewardhq/steward/internal/locale"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/policies"
	"github.com/stewardhq/steward/portal"
)

// newPortal builds the pages from the server's configuration, the accounts
// module and the policy engine. The portal imports no module; it reads
// them through the functions given here.
func (s *server) newPortal() (*portal.Portal, error) {
	acc := s.wired.accounts
	p, err := portal.New(portal.Config{
		GoogleClientID: s.cfg.GoogleClientID,
		BaseURL:        s.cfg.BaseURL,
		Dev:            s.cfg.Dev,
		Development:    s.cfg.Env == config.EnvDevelopment,
	}, portal.Deps{
		Account: func(ctx context.Context, userID string) (portal.Account, error) {
			u, err := acc.UserByID(ctx, userID)
			if err != nil {
				return portal.Account{}, err
			}
			return portal.Account{Name: u.Name, Email: u.Email, Role: u.Role, Language: u.Language}, nil
		},
		CSRFToken: acc.CSRFToken,
		Allowed:   portal.GuardAllowed(authz.NewGuard(s.engine), s.engine.Taxonomy),
		Now:       s.now,
		Logger:    s.log.With(slog.String("component", "portal")),
		Taxonomy:  s.engine.Taxonomy(),
		Messages:  []locale.Source{consent.Messages()},
		Privacy: &portal.Privacy{
			Categories: s.storedCategories,
			Holdings: func(ctx context.Context, p authz.Principal) (map[string]int64, error) {
				hs, err := s.wired.privacy.OwnHoldings(ctx, p)
				if err != nil {
					return nil, err
				}
				return holdingCounts(hs), nil
			},
			VisitorHoldings: func(c *fiber.Ctx) (map[string]int64, error) {
				vid := s.wired.consent.VisitorID(c)
				if vid == "" {
					return nil, nil
				}
				b, err := s.wired.consent.VisitorBrowsing(c.UserContext(), vid)
				if err != nil {
					return nil, err
				}
				hs, err := s.wired.privacy.Holdings(c.UserContext(), module.SubjectRef{Browsing: b})
				if err != nil {
					return nil, err
				}
				return holdingCounts(hs), nil
			},
			HasVisitorCookie: func(c *fiber.Ctx) bool { return s.wired.consent.VisitorID(c) != "" },
			Consent:          consentPages{s.wired.consent},
			Requests:         requestPages{m: s.wired.privacy, visitors: s.wired.consent, proxies: s.cfg.TrustedProxies},
		},
		Console: s.newConsole(),
	})
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	return p, nil
}

// newConsole is what the console reads: the data map, and the privacy
// module for the requests queue.
func (s *server) newConsole() *portal.Console {
	cr := consoleRequests{m: s.wired.privacy, accounts: s.wired.accounts}
	return &portal.Console{
		DataMap: s.consoleDataMap, Record: s.consoleRecord,
		AttributionChoices: portal.AttributionChoices{
			Models: attribution.Models(), Dimensions: attribution.GroupBys(),
			DefaultModel: attribution.DefaultModel, DefaultGroupBy: attribution.DefaultGroupBy,
			DefaultConversion: attribution.DefaultConversion,
			LookbackDays:      s.wired.attribution.Lookback().Hours() / 24,
			MaxSpanDays:       s.wired.attribution.MaxSpan().Hours() / 24,
		},
		Attribution: s.consoleAttribution, AttributionCSV: s.consoleAttributionCSV,
		Policy: s.consolePolicy, ApplyPolicy: s.applyPolicy,
		Consent:   s.consoleConsent,
		AuditRuns: s.consoleAuditRuns, RunAudit: s.consoleRunAudit,
		Requests: cr.Queue, Request: cr.Request,
		Extend: func(ctx context.Context, p authz.Principal, id string, months int, reason string) error {
			_, err := cr.m.Extend(ctx, p, id, months, reason)
			return err
		},
		Reject: func(ctx context.Context, p authz.Principal, id, reason string) error {
			_, err := cr.m.Reject(ctx, p, id, reason)
			return err
		},
		Retry: func(ctx context.Context, p authz.Principal, id string) error {
			_, err := cr.m.Retry(ctx, p, id)
			return err
		},
	}
}

// consoleRequests is the privacy module as the console's requests queue
// uses it, with the accounts module naming the staff in a trail.
type consoleRequests struct {
	m        *privacy.Module
	accounts *accounts.Module
}

// Queue lists the requests the filter keeps, as the queue shows them.
func (cr consoleRequests) Queue(ctx context.Context, p authz.Principal, f portal.RequestFilter) ([]portal.QueuedRequest, error) {
	list, err := cr.m.Queue(ctx, p, privacy.QueueFilter{Status: f.Status, Type: f.Type})
	if err != nil {
		return nil, err
	}
	out := make([]portal.QueuedRequest, len(list))
	for i, r := range list {
		if out[i], err = queuedRequest(privacy.RequestView{Request: r}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Request returns one request with its trail, who took each step, and the
// counts of its package or its certificate.
func (cr consoleRequests) Request(ctx context.Context, p authz.Principal, id string) (portal.QueuedRequest, error) {
	v, err := cr.m.Show(ctx, p, id)
	if err != nil {
		return portal.QueuedRequest{}, err
	}
	q, err := queuedRequest(v)
	if err != nil {
		return q, err
	}
	staff := map[string]string{}
	for i, e := range v.Events {
		step := &q.Trail[i]
		step.Note = e.Note
		switch e.ActorID {
		case privacy.OperatorID:
			step.ActorKind = portal.ActorSystem
		case privacy.VisitorActor:
			step.ActorKind = portal.ActorVisitor
		case privacy.LinkActor:
			step.ActorKind = portal.ActorLink
		case v.UserID:
			step.ActorKind = portal.ActorSubject
		default:
			step.ActorKind = portal.ActorStaff
			if _, ok := staff[e.ActorID]; !ok {
				staff[e.ActorID] = e.ActorID
				if u, err := cr.accounts.UserByID(ctx, e.ActorID); err == nil {
					staff[e.ActorID] = u.Email
				} else if !errors.Is(err, errs.ErrNotFound) {
					return q, err
				}
			}
			step.Actor = staff[e.ActorID]
		}
	}
	if v.Type == privacy.TypeAccess && v.Status == privacy.StatusCompleted {
		man, err := cr.m.Manifest(ctx, p, id)
		switch {
		case err == nil:
			q.Package = packageCounts(man)
		case !errors.Is(err, errs.ErrNotFound):
			return q, err
		}
	}
	return q, nil
}

// queuedRequest turns the API's view of a request into the console's.
func queuedRequest(v privacy.RequestView) (portal.QueuedRequest, error) {
	r, err := pageRequest(v)
	q := portal.QueuedRequest{
		PrivacyRequest: r, Email: v.Email, VisitorID: v.VisitorID,
		OnBehalf: v.OnBehalf, Reason: v.Reason, ExtensionReason: v.ExtensionReason,
	}
	return q, err
}

// packageCounts sums up a package's manifest by the table or module its
// files come from: how many files, in which formats, holding how many
// records.
func packageCounts(man privacy.Manifest) *portal.PackageCounts {
	pc := &portal.PackageCounts{GeneratedAt: man.GeneratedAt, Files: len(man.Sources), Included: len(man.Included), Withheld: len(man.Withheld)}
	at := map[[3]string]int{}
	for _, f := range man.Sources {
		k := [3]string{f.Store, f.Module, f.Table}
		i, ok := at[k]
		if !ok {
			i = len(pc.Places)
			at[k] = i
			pc.Places = append(pc.Places, portal.PackagePlace{Store: f.Store, Module: f.Module, Table: f.Table})
		}
		pl := &pc.Places[i]
		pl.Files++
		if !slices.Contains(pl.Formats, f.Format) {
			pl.Formats = append(pl.Formats, f.Format)
		}
		// A table's rows are in each of its formats; a module's items
		// are one file each.
		if f.Table == "" {
			pl.Rows += f.Rows
		}
	}
	for i := range pc.Places {
		if pl := &pc.Places[i]; pl.Table != "" {
			pl.Rows = man.Rows(pl.Store, pl.Table, pl.Formats[0])
		}
	}
	return pc
}

// consoleDataMap is the data map as the console's browser shows it.
func (s *server) consoleDataMap(ctx context.Context) ([]portal.DataMapColumn, error) {
	m, _, err := s.dataMap.Build(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]portal.DataMapColumn, len(m.Entries))
	for i, e := range m.Entries {
		out[i] = portal.DataMapColumn{
			Store: e.Store, Table: e.Table, Column: e.Column, Module: e.Module,
			Category: e.Category, CategoryName: e.CategoryName, Personal: e.Personal, Subject: e.Subject,
			Purposes: e.Purposes, Basis: e.LegalBasis.Name, Article: e.LegalBasis.Article,
			Retention: datamap.RetentionText(e.Retention),
			Erasure:   e.Erasure.Action, ErasureWhy: e.Erasure.Reason, ErasureUntil: e.Erasure.Until,
			Exported: e.Export.Include, ExportWhy: e.Export.Reason,
		}
	}
	return out, nil
}

// consoleRecord writes the record of processing activities of the columns
// f keeps, as `steward datamap --format` does for all of them.
func (s *server) consoleRecord(ctx context.Context, w io.Writer, format string, f portal.DataMapFilter) error {
	m, _, err := s.dataMap.Build(ctx)
	if err != nil {
		return err
	}
	kept := *m
	kept.Entries, kept.Categories = nil, map[string]policies.Category{}
	for _, e := range m.Entries {
		if f.Keeps(e.Store, e.Table, e.Category, e.Purposes) {
			kept.Entries = append(kept.Entries, e)
			kept.Categories[e.Category] = m.Categories[e.Category]
		}
	}
	proc, err := processingFacts()
	if err != nil {
		return err
	}
	return datamap.Render(w, &kept, format, proc)
}

// consoleAuditRuns is the audit's history as the console shows it, as
// GET /v1/audit/runs answers it.
func (s *server) consoleAuditRuns(ctx context.Context, limit int) ([]portal.AuditRun, error) {
	runs, err := s.wired.audit.Runs(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]portal.AuditRun, len(runs))
	for i, r := range runs {
		out[i] = auditRun(r)
	}
	return out, nil
}

// consoleRunAudit runs the audit and keeps it as p's run, as POST
// /v1/audit/runs does.
func (s *server) consoleRunAudit(ctx context.Context, p authz.Principal) (portal.AuditRun, error) {
	r, err := s.wired.audit.Run(ctx, p.UserID)
	if err != nil {
		return portal.AuditRun{}, err
	}
	return auditRun(r), nil
}

// auditRun turns a stored run of the audit into the console's.
func auditRun(r audit.Run) portal.AuditRun {
	out := portal.AuditRun{ID: r.ID, ActorID: r.ActorID, RanAt: r.RanAt, PolicyRevision: r.PolicyRevision,
		Status: r.Status, Findings: r.Findings, Warnings: r.Warnings}
	for _, c := range r.Report.Checks {
		pc := portal.AuditCheck{Name: c.Name, Status: c.Status, Summary: c.Summary}
		for _, f := range c.Findings {
			pc.Findings = append(pc.Findings, portal.AuditFinding{Level: f.Level, What: f.What, Where: f.Where, Detail: f.Detail})
		}
		out.Checks = append(out.Checks, pc)
	}
	return out
}

// consoleAttribution runs the report of the console's attribution
// workspace as GET /v1/analytics/attribution runs it for p (the same
// parsing, access question and folding, under the same limits), and
// counts the conversions of its period over time.
func (s *server) consoleAttribution(ctx context.Context, p authz.Principal, q portal.AttributionQuery) (portal.AttributionReport, error) {
	mod := s.wired.attribution
	req, a, err := s.attributionRequest(ctx, p, q)
	if err != nil {
		return portal.AttributionReport{}, err
	}
	rep, err := mod.Report(ctx, req, a)
	if err != nil {
		return portal.AttributionReport{}, err
	}
	series, err := mod.Series(ctx, rep.Request)
	if err != nil {
		return portal.AttributionReport{}, err
	}
	return pageAttribution(rep, series), nil
}

// consoleAttributionCSV writes the rows of the workspace's report as the
// route's format=csv does.
func (s *server) consoleAttributionCSV(ctx context.Context, w io.Writer, p authz.Principal, q portal.AttributionQuery) error {
	req, a, err := s.attributionRequest(ctx, p, q)
	if err != nil {
		return err
	}
	rep, err := s.wired.attribution.Report(ctx, req, a)
	if err != nil {
		return err
	}
	return attribution.WriteCSV(w, rep)
}

// attributionRequest reads the workspace's query and asks the access
// policy about it, as the route does.
func (s *server) attributionRequest(ctx context.Context, p authz.Principal, q portal.AttributionQuery) (attribution.Request, attribution.Access, error) {
	mod := s.wired.attribution
	req, err := mod.Parse(attribution.Params{
		From: q.From, To: q.To, Model: q.Model, GroupBy: q.GroupBy, Conversion: q.Conversion,
		LookbackDays: q.LookbackDays, HalfLifeDays: q.HalfLifeDays,
	})
	if err != nil {
		return attribution.Request{}, attribution.Access{}, err
	}
	a, err := mod.AccessFor(ctx, p, req)
	return req, a, err
}

// pageAttribution is a report and its series as the workspace shows them.
func pageAttribution(rep attribution.Report, series attribution.Series) portal.AttributionReport {
	r := rep.Request
	out := portal.AttributionReport{
		From: r.From, To: r.To, Model: r.Model, Dimensions: r.Dimensions, Conversion: r.Conversion,
		LookbackDays: r.LookbackDays, HalfLifeDays: r.HalfLifeDays, Conversions: rep.Totals.Conversions,
		MinGroupSize: rep.MinGroupSize, Folded: rep.Folded, Raw: rep.Raw, Step: series.Step,
	}
	for _, row := range rep.Rows {
		out.Rows = append(out.Rows, portal.AttributionRow{
			Group: row.Group, Groups: row.Groups, Currency: row.Currency, Conversions: row.Conversions, Revenue: row.Revenue.String(),
		})
	}
	for _, t := range rep.Totals.Revenue {
		out.Revenue = append(out.Revenue, portal.Amount{Currency: t.Currency, Value: t.Revenue.String()})
	}
	for _, t := range rep.Totals.Refunded {
		out.Refunded = append(out.Refunded, portal.Amount{Currency: t.Currency, Value: t.Revenue.String()})
	}
	for _, pt := range series.Points {
		out.Series = append(out.Series, portal.SeriesPoint{From: pt.From, To: pt.To, Conversions: pt.Conversions})
	}
	return out
}

// holdingCounts is what the pages show of holdings: items per category.
func holdingCounts(hs []privacy.Holding) map[string]int64 {
	out := make(map[string]int64, len(hs))
	for _, h := range hs {
		out[h.Category] = h.Items
	}
	return out
}

// storedCategories lists the personal data categories the live stores
// hold columns of, as the data map finds them, each marked when a table
// of it is tied to a browser's visitor id.
func (s *server) storedCategories(ctx context.Context) ([]portal.StoredCategory, error) {
	m, _, err := s.dataMap.Build(ctx)
	if err != nil {
		return nil, err
	}
	visitorTables := map[string]bool{}
	for _, e := range m.Entries {
		if e.Subject && e.Identifier == datamap.IdentifierVisitor {
			visitorTables[e.Store+"."+e.Table] = true
		}
	}
	tax := s.engine.Taxonomy()
	byKey := map[string]*portal.StoredCategory{}
	var out []*portal.StoredCategory
	for _, e := range m.Entries {
		c, ok := tax[e.Category]
		if !ok || !c.Personal || c.Group {
			continue
		}
		sc, ok := byKey[e.Category]
		if !ok {
			sc = &portal.StoredCategory{Category: c}
			byKey[e.Category] = sc
			out = append(out, sc)
		}
		// A column holding another kind of identifier (the account's id
		// on an event sent signed in) says nothing about a browser.
		other := e.Identifier != "" && e.Identifier != datamap.IdentifierVisitor
		sc.Visitor = sc.Visitor || visitorTables[e.Store+"."+e.Table] && !other
	}
	list := make([]portal.StoredCategory, len(out))
	for i, sc := range out {
		list[i] = *sc
	}
	return list, nil
}

// consentPages is the consent module as the privacy center uses it.
type consentPages struct{ m *consent.Module }

func (cp consentPages) Current(c *fiber.Ctx) (portal.ConsentState, error) {
	v, err := cp.m.Current(c)
	if err != nil {
		return portal.ConsentState{}, err
	}
	return consentState(v), nil
}

func (cp consentPages) Choose(c *fiber.Ctx, in portal.ConsentChoice) error {
	_, err := cp.m.Choose(c, consent.Choice{
		Method: in.Method, Purposes: in.Purposes, PolicyVersion: in.PolicyVersion, BannerVersion: in.BannerVersion,
	})
	return err
}

func (cp consentPages) History(c *fiber.Ctx) ([]portal.ConsentRecord, error) {
	proofs, err := cp.m.History(c)
	if err != nil {
		return nil, err
	}
	out := make([]portal.ConsentRecord, len(proofs))
	for i, p := range proofs {
		out[i] = portal.ConsentRecord{
			At: p.RecordedAt, Purpose: p.Purpose, Granted: p.Granted, Method: p.Method, GPC: p.GPC,
			PolicyVersion: p.PolicyVersion, Browser: p.UserAgent,
		}
	}
	return out, nil
}

func consentState(v consent.View) portal.ConsentState {
	st := portal.ConsentState{
		Purposes: consent.Purposes(), Granted: v.Purposes, GPC: v.GPC, Ask: v.Ask, AskReason: v.AskReason,
		PolicyVersion: v.PolicyVersion, BannerVersion: v.BannerVersion,
	}
	if v.Choice != nil {
		st.Chosen, st.DecidedAt, st.ExpiresAt = true, v.Choice.DecidedAt, v.Choice.ExpiresAt
	}
	return st
}

// requestPages is the privacy module as the privacy center uses it: a
// person's own requests only, whatever else their role may see.
type requestPages struct {
	m        *privacy.Module
	visitors *consent.Module
	proxies  []netip.Prefix
}

func (rp requestPages) List(ctx context.Context, p authz.Principal) ([]portal.PrivacyRequest, error) {
	views, err := rp.m.Overview(ctx, p)
	if err != nil {
		return nil, err
	}
	return pageRequests(views)
}

func (rp requestPages) File(ctx context.Context, p authz.Principal, typ string) (portal.PrivacyRequest, error) {
	req, err := rp.m.Create(ctx, p, privacy.NewRequest{Type: typ})
	if err != nil {
		return portal.PrivacyRequest{}, err
	}
	r, err := pageRequest(privacy.RequestView{Request: req})
	r.StatusToken = rp.m.StatusToken(req.ID)
	return r, err
}

func (rp requestPages) ShowByToken(ctx context.Context, id, token string) (portal.PrivacyRequest, error) {
	v, err := rp.m.ShowByToken(ctx, id, token)
	if err != nil {
		return portal.PrivacyRequest{}, err
	}
	r, err := pageRequest(v)
	r.StatusToken = token
	return r, err
}

func (rp requestPages) ErasurePreview(ctx context.Context, p authz.Principal) ([]portal.ErasureItem, error) {
	items, err := rp.m.ErasurePreview(ctx, p)
	if err != nil {
		return nil, err
	}
	return erasureItems(items), nil
}

func (rp requestPages) CheckRecentSignIn(ctx context.Context, p authz.Principal) error {
	return rp.m.CheckRecentSignIn(ctx, p)
}

func (rp requestPages) Show(ctx context.Context, p authz.Principal, id string) (portal.PrivacyRequest, error) {
	v, err := rp.m.Show(ctx, p, id)
	if err != nil {
		return portal.PrivacyRequest{}, err
	}
	if v.UserID != p.UserID {
		return portal.PrivacyRequest{}, errs.E(errs.ErrNotFound, "No such request of yours.")
	}
	return pageRequest(v)
}

func (rp requestPages) VisitorList(c *fiber.Ctx) ([]portal.PrivacyRequest, error) {
	views, err := rp.m.VisitorOverview(c.UserContext(), rp.visitors.VisitorID(c))
	if err != nil {
		return nil, err
	}
	return pageRequests(views)
}

func (rp requestPages) VisitorFile(c *fiber.Ctx, typ, lang string) (portal.PrivacyRequest, error) {
	network := ipaddr.Truncate(enrich.ClientIP(c.Context().RemoteAddr().String(), c.Get(fiber.HeaderXForwardedFor), rp.proxies))
	req, err := rp.m.CreateForVisitor(c.UserContext(), privacy.VisitorRequest{
		Type: typ, VisitorID: rp.visitors.VisitorID(c), Language: lang, Network: network,
	})
	if err != nil {
		return portal.PrivacyRequest{}, err
	}
	if typ == privacy.TypeErasure {
		rp.visitors.ForgetBrowser(c)
	}
	r, err := pageRequest(privacy.RequestView{Request: req})
	r.StatusToken = rp.m.StatusToken(req.ID)
	return r, err
}

func (rp requestPages) VisitorShow(c *fiber.Ctx, id string) (portal.PrivacyRequest, error) {
	v, err := rp.m.ShowForVisitor(c.UserContext(), rp.visitors.VisitorID(c), id)
	if err != nil {
		return portal.PrivacyRequest{}, err
	}
	return pageRequest(v)
}

func (rp requestPages) VisitorErasurePreview(c *fiber.Ctx) ([]portal.ErasureItem, error) {
	items, err := rp.m.VisitorErasurePreview(c.UserContext(), rp.visitors.VisitorID(c))
	if err != nil {
		return nil, err
	}
	return erasureItems(items), nil
}

// pageRequests turns the API's views of requests into the pages'.
func pageRequests(views []privacy.RequestView) ([]portal.PrivacyRequest, error) {
	out := make([]portal.PrivacyRequest, len(views))
	for i, v := range views {
		var err error
		if out[i], err = pageRequest(v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// erasureItems turns the module's erasure preview into the pages'.
func erasureItems(items []privacy.PreviewItem) []portal.ErasureItem {
	out := make([]portal.ErasureItem, len(items))
	for i, it := range items {
		out[i] = portal.ErasureItem{Category: it.Category, Action: it.Action, Reason: it.Reason, Until: it.Until, Items: it.Items}
	}
	return out
}

// pageRequest turns the API's view of a request into the pages'.
func pageRequest(v privacy.RequestView) (portal.PrivacyRequest, error) {
	r := portal.PrivacyRequest{
		ID: v.ID, Type: v.Type, Status: v.Status, Visitor: v.UserID == "" && v.VisitorID != "",
		ReceivedAt: v.ReceivedAt, DueAt: v.DueAt, CompletedAt: v.CompletedAt,
		Failure: v.Failure, PackageSize: v.PackageSize, DownloadURL: v.DownloadURL,
		DownloadExpiresAt: v.DownloadExpiresAt, PackageExpiresAt: v.PackageExpiresAt,
	}
	for _, e := range v.Events {
		r.Trail = append(r.Trail, portal.RequestStep{At: e.At, Event: e.Event})
	}
	if len(v.Certificate) == 0 {
		return r, nil
	}
	var cert privacy.Certificate
	if err := json.Unmarshal(v.Certificate, &cert); err != nil {
		return r, fmt.Errorf("read the certificate of request %s: %w", v.ID, err)
	}
	pc := &portal.Certificate{StartedAt: cert.StartedAt, CompletedAt: cert.CompletedAt, Passed: cert.Verification.Passed, JSON: v.Certificate}
	for _, t := range cert.Tables {
		pc.Tables = append(pc.Tables, portal.CertificateTable{Store: t.Store, Table: t.Table, Mode: t.Mode, Before: t.Before, After: t.After, Kept: t.Kept})
	}
	// A category kept in several tables for one reason is one line.
	for _, k := range cert.Kept {
		i := slices.IndexFunc(pc.Kept, func(o portal.CertificateKept) bool {
			return o.Category == k.Category && o.Reason == k.Reason && o.Until == k.Until
		})
		if i < 0 {
			pc.Kept = append(pc.Kept, portal.CertificateKept{Category: k.Category, Reason: k.Reason, Until: k.Until, UntilLatest: k.UntilLatest})
			i = len(pc.Kept) - 1
		}
		pc.Kept[i].Rows += k.Rows
		if k.UntilLatest != nil && (pc.Kept[i].UntilLatest == nil || k.UntilLatest.After(*pc.Kept[i].UntilLatest)) {
			pc.Kept[i].UntilLatest = k.UntilLatest
		}
	}
	r.Certificate = pc
	return r, nil
}

// mountPortal mounts the pages on app. Call it after mountAuth, so the
// pages see who is signed in and their forms pass the CSRF check.
func (s *server) mountPortal(app *fiber.App) error {
	p, err := s.newPortal()
	if err != nil {
		return err
	}
	p.Mount(app, s.doc)
	return nil
}

// firstRunLink returns the one-time link that signs the first
// administrator in, when the server runs in development and no active
// administrator exists; ok is false otherwise.
func (s *server) firstRunLink(ctx context.Context) (string, bool, error) {
	return s.wired.accounts.FirstRunLink(ctx, s.cfg.BaseURL)
}

// announceFirstRun prints the first-run link to w (the server's stderr)
// as one line, like a notebook server's token URL, when there is one. A
// failure to make it is logged and does not stop the server.
func (s *server) announceFirstRun(ctx context.Context, w io.Writer) {
	link, ok, err := s.firstRunLink(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "make the first-run sign-in link", slog.Any("error", err))
		return
	}
	if ok {
		fmt.Fprintln(w, firstRunLine(link))
	}
}

// firstRunLine is the line announceFirstRun prints.
func firstRunLine(link string) string {
	return fmt.Sprintf("Sign in as the first admin (one use, valid %d minutes): %s", int(accounts.FirstRunLinkTTL.Minutes()), link)
}

// consoleConsent is the consent module's report with the policy's minimum
// group size, the one attribution folds small groups by.
func (s *server) consoleConsent(ctx context.Context, from, to time.Time) (portal.ConsentReport, error) {
	k, err := attribution.PolicyMinGroupSize()
	if err != nil {
		return portal.ConsentReport{}, err
	}
	rep, err := s.wired.consent.Report(ctx, consent.ReportQuery{From: from, To: to, MinGroup: k})
	if err != nil {
		return portal.ConsentReport{}, err
	}
	out := portal.ConsentReport{
		From: rep.From, To: rep.To, Bucket: rep.Bucket, MinGroup: rep.MinGroup,
		Choices: rep.Choices, GPCChoices: rep.GPCChoices, Suppressed: rep.Suppressed,
	}
	rows := func(in []consent.ReportRow) []portal.ConsentRow {
		out := make([]portal.ConsentRow, len(in))
		for i, r := range in {
			out[i] = portal.ConsentRow{
				Bucket: r.Bucket, Purpose: r.Purpose, PolicyVersion: r.PolicyVersion, BannerVersion: r.BannerVersion,
				Method: r.Method, Choices: r.Choices, Granted: r.Granted, Suppressed: r.Suppressed,
			}
		}
		return out
	}
	out.Series, out.Versions, out.Methods = rows(rep.Series), rows(rep.Versions), rows(rep.Methods)
	return out, nil
}
