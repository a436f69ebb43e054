package portal

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/web"
)

// AuditRun is one stored run of the audit as the console shows it: the
// report of GET /v1/audit/report, kept with who ran it and when.
type AuditRun struct {
	ID string
	// ActorID is the account id of whoever ran it.
	ActorID        string
	RanAt          time.Time
	PolicyRevision string
	// Status is the worst status of its checks: ok, warning or finding.
	Status             string
	Findings, Warnings int64
	Checks             []AuditCheck
}

// AuditCheck is one check of a run, with what it found.
type AuditCheck struct {
	// Name is the check's stable name, such as "retention".
	Name string
	// Status is ok, warning or finding.
	Status   string
	Summary  string
	Findings []AuditFinding
}

// AuditFinding is one thing a check found. It names tables, ids,
// categories and counts, never a personal value.
type AuditFinding struct {
	// Level is warning or finding.
	Level, What, Where, Detail string
}

// Console paths of the audit.
const (
	pathConsoleAudit    = "/console/audit"
	pathConsoleAuditRun = "/console/audit/run"
)

// auditHistory is how many runs the audit page lists.
const auditHistory = 20

// Names of the audit's checks (audit.Check... and consent's), whose
// names and fixes the page knows. A check it does not know shows its own
// name and points to the audit's documentation.
const (
	checkDataMap      = "data_map"
	checkRetention    = "retention"
	checkDeadlines    = "request_deadlines"
	checkAdminLog     = "admin_log_integrity"
	checkDecisionLog  = "decision_log"
	checkConsentProof = "consent_proof"
	checkRecord       = "records_of_processing"
)

// auditChecks are the checks the page names in words.
var auditChecks = []string{checkDataMap, checkRetention, checkDeadlines, checkAdminLog, checkDecisionLog, checkConsentProof, checkRecord}

// auditStatuses are the statuses of checks, findings and runs.
var auditStatuses = []string{"ok", "warning", "finding"}

// auditFixLabels are the messages of the fixes' links.
var auditFixLabels = []string{"ConsoleAuditFixTable", "ConsoleAuditFixDataMap", "ConsoleAuditFixRule", "ConsoleAuditFixRequests", "ConsoleAuditFixChoices"}

func (p *Portal) mountConsoleAudit(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsoleAudit, Tag: tag,
		Summary: "The audit: the latest stored run's findings by check, each with where it is fixed, what changed " +
			"since the run before, and the history of runs",
		Description: "Shows stored runs only (`GET /v1/audit/runs`) and writes nothing; the *Run the audit now* form " +
			"posts to `/console/audit/run`. `?ran=<id>` says the run with that id was just made. Needs the right to " +
			"audit every category, like `GET /v1/audit/report`.",
		Responses: map[int]any{200: web.Body{ContentType: fiber.MIMETextHTMLCharsetUTF8}, 303: nil, 403: nil},
	}, p.consoleAudit)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: pathConsoleAuditRun, Tag: tag,
		Summary: "Run the audit now and keep it (a form post), then show it",
		Description: "Runs the report and stores it, as `POST /v1/audit/runs` does, then answers `303` to " +
			"`/console/audit?ran=<id>`. Signed out, `303` to the sign-in page, which returns to the audit. A post " +
			"from another site is refused (403).",
		Responses: map[int]any{303: nil, 403: nil},
	}, p.consoleAuditRun)
}

// auditView is the audit page's content.
type auditView struct {
	// RunAction is where the form to run the audit posts.
	RunAction string
	// Latest is the newest run, nil before the first; Ran is true when the
	// browser just made it.
	Latest *AuditRun
	Ran    bool
	ByYou  bool
	Checks []auditCheckView
	// Previous is the run before the latest, nil when there is none;
	// Diff compares the two.
	Previous *AuditRun
	Diff     auditDiff
	History  []auditHistoryRow
}

// auditCheckView is a check of the latest run with its findings.
type auditCheckView struct {
	AuditCheck
	Label    string
	Findings []auditFindingView
}

// auditFindingView is a finding with where it is fixed, marked when the
// run before did not have it.
type auditFindingView struct {
	AuditFinding
	New   bool
	Fixes []auditFix
}

// auditFix is one way to fix a finding: a page of this site (Href and
// the message LabelID), a command to run, or a section of the docs.
type auditFix struct {
	Href, LabelID string
	Command       string
	Doc, Section  string
}

// auditDiff is what changed from one run to the next, by check name and
// the finding's What and Where.
type auditDiff struct {
	New, Resolved, Unchanged []auditDiffItem
}

// auditDiffItem is a finding of a diff with the name of its check, and
// the check's name in the page's language.
type auditDiffItem struct {
	Check, Label string
	AuditFinding
}

// auditHistoryRow is one run of the history.
type auditHistoryRow struct {
	AuditRun
	ByYou, Latest bool
}

func (p *Portal) consoleAudit(c *fiber.Ctx) error {
	pg, pr, done, err := p.consolePage(c, pathConsoleAudit, "ConsoleAuditTitle")
	if done || err != nil {
		return err
	}
	runs, err := p.console.AuditRuns(c.UserContext(), auditHistory)
	if err != nil {
		return fmt.Errorf("read the audit's runs: %w", err)
	}
	v := &auditView{RunAction: pathConsoleAuditRun}
	for i, r := range runs {
		v.History = append(v.History, auditHistoryRow{AuditRun: r, ByYou: r.ActorID == pr.UserID, Latest: i == 0})
	}
	if len(runs) > 0 {
		v.Latest = &runs[0]
		v.Ran, v.ByYou = c.Query("ran") == runs[0].ID, runs[0].ActorID == pr.UserID
		var before AuditRun
		if len(runs) > 1 {
			v.Previous, before = &runs[1], runs[1]
			v.Diff = diffRuns(runs[0], before)
			for _, items := range [][]auditDiffItem{v.Diff.New, v.Diff.Resolved, v.Diff.Unchanged} {
				for i := range items {
					items[i].Label = checkLabel(pg.L, items[i].Check)
				}
			}
		}
		v.Checks = auditCheckViews(pg.L, runs[0], before)
	}
	pg.Audit = v
	return p.render(c, "console-audit", pg)
}

func (p *Portal) consoleAuditRun(c *fiber.Ctx) error {
	if err := sameOrigin(c); err != nil {
		return err
	}
	// The sign-in returns to the audit, not to this form's target.
	if _, ok := authz.FromContext(c.UserContext()); !ok {
		return c.Redirect(pathHome+"?"+url.Values{web.ParamNext: {pathConsoleAudit}}.Encode(), fiber.StatusSeeOther)
	}
	_, pr, done, err := p.consolePage(c, pathConsoleAudit, "ConsoleAuditTitle")
	if done || err != nil {
		return err
	}
	run, err := p.console.RunAudit(c.UserContext(), pr)
	if err != nil {
		return fmt.Errorf("run the audit: %w", err)
	}
	return c.Redirect(pathConsoleAudit+"?"+url.Values{"ran": {run.ID}}.Encode(), fiber.StatusSeeOther)
}

// auditCheckViews are the latest run's checks with their findings'
// fixes, each finding marked new when the run before lacks it.
func auditCheckViews(l *localizer, latest, before AuditRun) []auditCheckView {
	prev := findingCounts(before)
	out := make([]auditCheckView, len(latest.Checks))
	for i, ch := range latest.Checks {
		out[i] = auditCheckView{AuditCheck: ch, Label: checkLabel(l, ch.Name)}
		for _, f := range ch.Findings {
			k := findingKey(ch.Name, f)
			isNew := prev[k] == 0
			if !isNew {
				prev[k]--
			}
			out[i].Findings = append(out[i].Findings, auditFindingView{AuditFinding: f, New: isNew && before.ID != "", Fixes: auditFixes(ch.Name, f)})
		}
	}
	return out
}

// checkLabel names a check in the page's language; a check the page does
// not know shows its own name.
func checkLabel(l *localizer, name string) string {
	if slices.Contains(auditChecks, name) {
		return l.T("ConsoleAuditCheck_" + name)
	}
	return name
}

// findingKey is what makes two runs' findings the same finding: the
// check, what it found and where. The detail (a count, a date) may
// change while the finding stays.
func findingKey(check string, f AuditFinding) string {
	return check + "\x00" + f.What + "\x00" + f.Where
}

// findingCounts counts a run's findings by key: a check may find the
// same thing twice in one place.
func findingCounts(r AuditRun) map[string]int {
	out := map[string]int{}
	for _, ch := range r.Checks {
		for _, f := range ch.Findings {
			out[findingKey(ch.Name, f)]++
		}
	}
	return out
}

// diffRuns compares the latest run with the one before: findings new in
// it, resolved since (the run before had them, the latest has not), and
// unchanged.
func diffRuns(latest, before AuditRun) auditDiff {
	var d auditDiff
	prev := findingCounts(before)
	for _, ch := range latest.Checks {
		for _, f := range ch.Findings {
			k, it := findingKey(ch.Name, f), auditDiffItem{Check: ch.Name, AuditFinding: f}
			if prev[k] > 0 {
				prev[k]--
				d.Unchanged = append(d.Unchanged, it)
			} else {
				d.New = append(d.New, it)
			}
		}
	}
	next := findingCounts(latest)
	for _, ch := range before.Checks {
		for _, f := range ch.Findings {
			k := findingKey(ch.Name, f)
			if next[k] > 0 {
				next[k]--
				continue
			}
			d.Resolved = append(d.Resolved, auditDiffItem{Check: ch.Name, AuditFinding: f})
		}
	}
	return d
}

// whereTable reads the store and table out of a finding's Where, "sql
// users.email" or "warehouse events"; ok is false for any other shape.
func whereTable(where string) (store, table string, ok bool) {
	store, rest, found := strings.Cut(where, " ")
	if !found || (store != "sql" && store != "warehouse") || rest == "" || strings.ContainsAny(rest, " /") {
		return "", "", false
	}
	table, _, _ = strings.Cut(rest, ".")
	return store, table, true
}

// dataMapHref is the data map browser showing one table.
func dataMapHref(store, table string) string {
	return pathConsoleDataMap + DataMapFilter{Store: store, Table: table}.query()
}

// auditFixes says where a finding is fixed, decided by its check and its
// fields: the data map's findings at the table in the data map browser
// and the docs on tagging, retention's at the table's rule and the
// retention command, request deadlines in the requests queue, and the
// rest in the docs that say what to do.
func auditFixes(check string, f AuditFinding) []auditFix {
	store, table, isTable := whereTable(f.Where)
	auditDoc := auditFix{Doc: "docs/operations.md", Section: "The DPO's audit"}
	switch check {
	case checkDataMap:
		switch {
		case f.What == "not-migrated":
			return []auditFix{{Command: "steward migrate up"}, {Doc: "docs/operations.md", Section: "Migrations"}}
		case f.What == "unstored-item":
			return []auditFix{{Doc: "docs/policies.md", Section: "Where the privacy policy and the stored data differ"},
				{Href: pathConsoleDataMap, LabelID: "ConsoleAuditFixDataMap"}}
		case isTable:
			return []auditFix{{Href: dataMapHref(store, table), LabelID: "ConsoleAuditFixTable"},
				{Doc: "docs/policies.md", Section: "Tagging stored data"}}
		}
		return []auditFix{{Href: pathConsoleDataMap, LabelID: "ConsoleAuditFixDataMap"}, {Doc: "docs/policies.md", Section: "Tagging stored data"}}
	case checkRetention:
		fixes := []auditFix{{Command: "steward retention run"}}
		if isTable {
			fixes = append(fixes, auditFix{Href: dataMapHref(store, table), LabelID: "ConsoleAuditFixRule"})
		}
		return append(fixes, auditFix{Doc: "docs/operations.md", Section: "Retention"})
	case checkDeadlines:
		return []auditFix{{Href: pathConsoleRequests, LabelID: "ConsoleAuditFixRequests"},
			{Doc: "docs/operations.md", Section: "Privacy requests"}}
	case checkConsentProof:
		return []auditFix{{Doc: "docs/policies.md", Section: "Consent gating"},
			{Href: pathPrivacyConsent, LabelID: "ConsoleAuditFixChoices"}}
	case checkDecisionLog:
		return []auditFix{{Doc: "docs/policies.md", Section: "Decisions"}}
	case checkRecord:
		return []auditFix{{Command: "steward datamap --format markdown"}, {Href: pathConsoleDataMap, LabelID: "ConsoleAuditFixDataMap"}}
	}
	// The admin log's broken chain, and any check the page does not know.
	return []auditFix{auditDoc}
}
