package portal

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
)

// PolicyView is the policies in force and, when the server reads them
// from a bundle folder (STEWARD_POLICY_DIR), what that folder holds now.
type PolicyView struct {
	// Revision is the revision in force.
	Revision string
	// Dir is the bundle folder; "" when the built-in policies are in force.
	Dir string
	// Candidate is the folder's content now; nil without a folder.
	Candidate *PolicyCandidate
}

// PolicyCandidate is a bundle folder's content and what applying it would
// change (`steward policy diff`).
type PolicyCandidate struct {
	Revision string
	// Error says why the folder's bundle fails its checks; the policies
	// in force stay then.
	Error     string
	Rules     []PolicyRuleChange
	Access    []PolicyAccessChange
	Retention []PolicyRetentionChange
}

// PolicyRuleChange is a category whose retention, export or erasure rule
// changes.
type PolicyRuleChange struct {
	Category, Rule, Before, After string
}

// PolicyAccessChange is a role that gains or loses an action on a category.
type PolicyAccessChange struct {
	Role, Action, Category string
	Gains                  bool
}

// PolicyRetentionChange is a table's rows the next retention run would
// remove now, under the policies in force and under the candidate.
type PolicyRetentionChange struct {
	Store, Table, Action string
	Current, Candidate   int64
}

// ErrPolicyChanged is wrapped by Console.ApplyPolicy's error when the
// folder no longer holds the revision the page showed.
var ErrPolicyChanged = errors.New("the policy folder changed since it was shown")

const (
	pathConsolePolicy      = "/console/policy"
	pathConsolePolicyApply = "/console/policy/apply"
)

// mountConsolePolicy adds the policy page's routes.
func (p *Portal) mountConsolePolicy(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsolePolicy, Tag: tag,
		Summary: "The policies in force and, from the bundle folder, what applying its content would change",
		Description: "Categories whose retention, export or erasure rule changes, roles that gain or lose access, and " +
			"the rows the next retention run would remove under each (`steward policy diff`). Checking the folder " +
			"runs its Rego tests, so the page takes a second or two. Needs the right to audit every category.",
		Responses: map[int]any{200: web.Body{ContentType: fiber.MIMETextHTMLCharsetUTF8}, 303: nil, 403: nil},
	}, p.consolePolicy)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: pathConsolePolicyApply, Tag: tag,
		Summary: "Apply the bundle folder's policies (a form post)",
		Description: "Form field `revision`: the folder's revision the page showed; if the folder changed since, nothing " +
			"is applied. Answers `303` to `/console/policy?applied=<revision>` or `?error=changed|failed`. The admin " +
			"log records the old and the new revision.",
		Responses: map[int]any{303: nil, 403: nil},
	}, p.consolePolicyApply)
}

func (p *Portal) consolePolicy(c *fiber.Ctx) error {
	pg, _, done, err := p.consolePage(c, pathConsolePolicy, "ConsolePolicyTitle")
	if done || err != nil {
		return err
	}
	v, err := p.console.Policy(c.UserContext())
	if err != nil {
		return fmt.Errorf("compare the policies: %w", err)
	}
	pg.Policy = &v
	pg.Applied = c.Query("applied")
	pg.Error = errorMessage(pg.L, policyErrors, c.Query("error"))
	return p.render(c, "console-policy", pg)
}

// policyErrors maps the codes a refused apply comes back with to their
// messages.
var policyErrors = map[string]string{
	"changed": "ConsolePolicyErrorChanged",
	"failed":  "ConsolePolicyErrorFailed",
}

func (p *Portal) consolePolicyApply(c *fiber.Ctx) error {
	if err := sameOrigin(c); err != nil {
		return err
	}
	_, pr, done, err := p.consolePage(c, pathConsolePolicy, "ConsolePolicyTitle")
	if done || err != nil {
		return err
	}
	rev, err := p.console.ApplyPolicy(c.UserContext(), pr, c.FormValue("revision"))
	switch {
	case errors.Is(err, ErrPolicyChanged):
		return c.Redirect(pathConsolePolicy+"?error=changed", fiber.StatusSeeOther)
	case errs.Kind(err) == errs.ErrInvalidArgument:
		return c.Redirect(pathConsolePolicy+"?error=failed", fiber.StatusSeeOther)
	case err != nil:
		return err
	}
	return c.Redirect(pathConsolePolicy+"?"+url.Values{"applied": {rev}}.Encode(), fiber.StatusSeeOther)
}
