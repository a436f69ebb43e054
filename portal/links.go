package portal

import (
	"context"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/policies"
)

// Link is one thing a signed-in person may use, shown on the entry page
// when the access policy lets their role use it.
type Link struct {
	// ID names the link's two messages, "Link<ID>Title" and
	// "Link<ID>Text", in every language file.
	ID string
	// Href is where the link goes: a page or a JSON endpoint of this
	// server.
	Href string
	// PeriodDays, when positive, adds from= and to= query parameters (and
	// --from and --to to the command) covering the last PeriodDays days up
	// to today, for endpoints that need a period.
	PeriodDays int
	// Command is the `steward` command line that gives the same from a
	// shell on the server, or "" when there is none.
	Command string
	// Need is the access question the route itself asks; the link is shown
	// when the policy answers yes. Nil shows it to every signed-in account,
	// unless AnyOf is set.
	Need *Access
	// AnyOf, when Need is nil, shows the link when the policy answers yes
	// to any of these questions: a page of several parts that each ask
	// their own (the console), which answers when a role may use one.
	AnyOf []Access
}

// Access is one question for the access policy: may the caller's role
// perform Action on data of Categories?
type Access struct {
	// Action is one of the authz actions (read, list, export, audit, ...).
	Action string
	// Categories are the data categories the route reveals.
	Categories []string
	// Every asks about every category of the taxonomy instead of
	// Categories, and needs all of them permitted: the audit routes
	// refuse a role that may audit only part of the data map.
	Every bool
	// Own asks about the caller's own rows (routes that show a subject
	// their own data, such as their privacy requests).
	Own bool
}

// attributionNeed is the question of the attribution report's route for
// the categories of a grouping by source; other groupings ask about their
// own dimension, which the route (and the console's workspace) asks again
// for the report asked for.
func attributionNeed() Access {
	return Access{Action: authz.ActionList, Categories: []string{
		"user.behavior.attribution.utm", "user.behavior.browsing_history",
		"user.financial.price", "user.financial.currency",
	}}
}

// Allowed answers an access question for a principal.
type Allowed func(ctx context.Context, p authz.Principal, need Access) (bool, error)

// DefaultLinks is the list of what the entry page links to, in the order
// shown. It is the one list of the portal's destinations: when a page
// replaces a JSON endpoint for people (the privacy center, the console),
// its entry changes here. Each Need repeats the question the route asks
// the access policy, so the page shows a link exactly when the route
// would answer; the wired server's tests check each against the route.
func DefaultLinks() []Link {
	return []Link{
		{ID: "Me", Href: "/v1/me"},
		{ID: "Sessions", Href: "/v1/me/sessions"},
		{ID: "Holdings", Href: "/privacy"},
		{
			ID: "PrivacyRequests", Href: "/v1/privacy/requests",
			Need: &Access{Action: authz.ActionList, Categories: []string{"user.privacy_request"}, Own: true},
		},
		{ID: "Console", Href: "/console", AnyOf: consoleNeeds()},
		{
			ID: "AuditReport", Href: "/v1/audit/report", Command: "steward audit",
			Need: &Access{Action: authz.ActionAudit, Every: true},
		},
		{
			ID: "DataMap", Href: "/v1/audit/datamap", Command: "steward datamap --format markdown",
			Need: &Access{Action: authz.ActionAudit, Every: true},
		},
		{
			ID: "Attribution", Href: "/v1/analytics/attribution", PeriodDays: 30, Command: "steward analytics attribution",
			Need: new(attributionNeed()),
		},
		{ID: "OpenAPI", Href: "/openapi.json"},
	}
}

// GuardAllowed answers access questions with the access policy through
// guard, as the routes themselves do. taxonomy gives the categories an
// Every question covers; cmd/steward passes the policy engine's Taxonomy.
func GuardAllowed(guard *authz.Guard, taxonomy func() map[string]policies.Category) Allowed {
	return func(ctx context.Context, p authz.Principal, need Access) (bool, error) {
		cats := need.Categories
		if need.Every {
			cats = storable(taxonomy())
		}
		owner := ""
		if need.Own {
			owner = p.UserID
		}
		d, err := guard.Check(ctx, p, need.Action, owner, cats)
		if errs.Kind(err) == errs.ErrForbidden {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return !need.Every || len(d.Redact) == 0, nil
	}
}

// storable returns the keys of the categories columns can be tagged with,
// sorted: every taxonomy entry but the groups.
func storable(tax map[string]policies.Category) []string {
	out := make([]string, 0, len(tax))
	for k, c := range tax {
		if !c.Group {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// shownLink is a link as the page renders it.
type shownLink struct {
	Title, Text, Href, Command string
}

// linksFor returns the links p may use, in the order of links.
func (po *Portal) linksFor(ctx context.Context, p authz.Principal, l *localizer) ([]shownLink, error) {
	out := make([]shownLink, 0, len(po.links))
	for _, k := range po.links {
		ok, err := po.mayUse(ctx, p, k)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		s := shownLink{Title: l.T("Link" + k.ID + "Title"), Text: l.T("Link" + k.ID + "Text"), Href: k.Href, Command: k.Command}
		if k.PeriodDays > 0 {
			from, to := lastDays(po.now(), k.PeriodDays)
			s.Href += "?" + url.Values{"from": {from}, "to": {to}}.Encode()
			if s.Command != "" {
				s.Command += " --from " + from + " --to " + to
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// lastDays returns the period of the last n days up to and including the
// day of now (UTC), as the dates of its first day and of the day after it
// ends, the from and to of a route that takes a period.
func lastDays(now time.Time, n int) (from, to string) {
	today := now.UTC().Truncate(24 * time.Hour)
	return today.AddDate(0, 0, -n).Format(time.DateOnly), today.AddDate(0, 0, 1).Format(time.DateOnly)
}

// mayUse answers whether p may use what link k leads to: its Need, or any
// of its AnyOf.
func (po *Portal) mayUse(ctx context.Context, p authz.Principal, k Link) (bool, error) {
	if k.Need != nil {
		return po.allowed(ctx, p, *k.Need)
	}
	for _, need := range k.AnyOf {
		ok, err := po.allowed(ctx, p, need)
		if ok || err != nil {
			return ok, err
		}
	}
	return len(k.AnyOf) == 0, nil
}

// messageIDs returns the ids of the messages links use.
func linkMessageIDs(links []Link) []string {
	var ids []string
	for _, k := range links {
		ids = append(ids, "Link"+k.ID+"Title", "Link"+k.ID+"Text")
	}
	return slices.Compact(ids)
}
