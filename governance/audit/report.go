package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/governance/retention"
	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/policies"
)

// Check statuses, from best to worst. A finding breaks a rule the DPO must
// act on; a warning is something to look at before it becomes one.
const (
	StatusOK      = "ok"
	StatusWarning = "warning"
	StatusFinding = "finding"
)

// Names of the checks, in the order the report lists them.
const (
	CheckDataMap     = "data_map"
	CheckRetention   = "retention"
	CheckDeadlines   = "request_deadlines"
	CheckAdminLog    = "admin_log_integrity"
	CheckDecisionLog = "decision_log"
	CheckRecord      = "records_of_processing"
)

// DeadlineWarning is how close to its due date an open privacy request is
// reported as a warning.
const DeadlineWarning = 7 * 24 * time.Hour

// Report is the DPO's audit: one Check per governance rule.
type Report struct {
	GeneratedAt    time.Time `json:"generated_at"`
	PolicyRevision string    `json:"policy_revision"`
	Checks         []Check   `json:"checks"`
	// Clean is true when no check has a finding; warnings are allowed.
	Clean bool `json:"clean"`
}

// Check is the result of one audit check.
type Check struct {
	Name string `json:"name"`
	// Status is ok, warning or finding: the worst level of its findings.
	Status   string    `json:"status"`
	Summary  string    `json:"summary"`
	Findings []Finding `json:"findings"`
}

// Finding is one thing a check found. It names tables, ids, categories
// and counts, never a personal value.
type Finding struct {
	// Level is warning or finding.
	Level  string `json:"level"`
	What   string `json:"what"`
	Where  string `json:"where"`
	Detail string `json:"detail"`
}

// Policy is the part of the policy engine the report reads;
// *policies.Engine is one.
type Policy interface {
	Revision() string
	Checklist() []policies.ChecklistItem
}

// Retention is the part of the retention runner the report uses;
// *retention.Module is one.
type Retention interface {
	Preview(ctx context.Context) (retention.Report, error)
}

// newCheck returns a check whose status follows its findings.
func newCheck(name, summary string, findings []Finding) Check {
	c := Check{Name: name, Status: StatusOK, Summary: summary, Findings: findings}
	if c.Findings == nil {
		c.Findings = []Finding{}
	}
	for _, f := range c.Findings {
		switch f.Level {
		case StatusFinding:
			c.Status = StatusFinding
		case StatusWarning:
			if c.Status == StatusOK {
				c.Status = StatusWarning
			}
		}
	}
	return c
}

// Report runs every check and returns the audit report. An error means a
// store could not be read; what the checks find is in the report.
func (m *Module) Report(ctx context.Context) (Report, error) {
	d := m.deps
	if d.DB == nil || d.Policy == nil || d.Retention == nil || d.Processing == nil {
		return Report{}, errors.New("audit report: DB, Policy, Retention and Processing are required")
	}
	now := m.deps.Now().UTC()
	dm, problems, err := d.DataMap(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("audit report: build data map: %w", err)
	}
	proc, err := d.Processing()
	if err != nil {
		return Report{}, fmt.Errorf("audit report: processing facts: %w", err)
	}
	rep := Report{GeneratedAt: now, PolicyRevision: d.Policy.Revision()}
	rep.Checks = append(rep.Checks, DataMapCheck(dm, problems, d.Policy.Checklist()))
	steps := []func(context.Context) (Check, error){
		func(ctx context.Context) (Check, error) {
			return RetentionCheck(ctx, d.DB, d.Retention, m.cfg.RetentionInterval, now)
		},
		func(ctx context.Context) (Check, error) { return DeadlineCheck(ctx, d.DB, now) },
		func(ctx context.Context) (Check, error) { return AdminLogCheck(ctx, d.DB) },
		func(ctx context.Context) (Check, error) { return DecisionLogCheck(ctx, d.DB) },
	}
	for _, step := range steps {
		c, err := step(ctx)
		if err != nil {
			return Report{}, fmt.Errorf("audit report: %w", err)
		}
		rep.Checks = append(rep.Checks, c)
	}
	for _, a := range d.Auditors {
		checks, err := a.AuditChecks(ctx)
		if err != nil {
			return Report{}, fmt.Errorf("audit report: %w", err)
		}
		for _, c := range checks {
			rep.Checks = append(rep.Checks, moduleCheck(c))
		}
	}
	rep.Checks = append(rep.Checks, RecordCheck(dm, proc))
	rep.Clean = true
	for _, c := range rep.Checks {
		if c.Status == StatusFinding {
			rep.Clean = false
		}
	}
	return rep, nil
}

// DataMapCheck reports every stored column the data map cannot govern and
// every item of the privacy policy that no stored column carries.
func DataMapCheck(dm *datamap.Map, problems []datamap.Problem, checklist []policies.ChecklistItem) Check {
	all := append(append([]datamap.Problem{}, problems...), datamap.CheckChecklist(dm, checklist)...)
	var findings []Finding
	for _, p := range all {
		where := p.Store + " " + p.Table
		if p.Column != "" {
			where += "." + p.Column
		}
		findings = append(findings, Finding{Level: StatusFinding, What: p.Rule, Where: where, Detail: p.Message})
	}
	summary := fmt.Sprintf("%d columns mapped, %d privacy-policy items checked", len(dm.Entries), len(checklist))
	if len(findings) > 0 {
		summary = fmt.Sprintf("%d problems in the data map and the privacy-policy checklist", len(findings))
	}
	return newCheck(CheckDataMap, summary, findings)
}

// RetentionCheck asks the retention runner, in a preview that changes
// nothing, what is past its rule right now, and looks at when the rules
// last really ran. Rows past their rule are findings; a last run older
// than twice the interval, or none at all, is a warning. The preview is
// not stored: the audit writes nothing, as a GET may run it, and what it
// saw is in its own report.
func RetentionCheck(ctx context.Context, db *bun.DB, r Retention, interval time.Duration, now time.Time) (Check, error) {
	dry, err := r.Preview(ctx)
	if err != nil {
		return Check{}, fmt.Errorf("retention dry run: %w", err)
	}
	var findings []Finding
	var overdue int64
	for _, it := range dry.Items {
		if it.Rows == 0 {
			continue
		}
		overdue += it.Rows
		what := "rows past their retention period"
		if it.Action != "delete" {
			what = "values past their retention period"
		}
		detail := fmt.Sprintf("%d rows to %s (%s), older than %s", it.Rows, it.Action, strings.Join(it.Categories, ", "), it.Period)
		if len(it.Columns) > 0 {
			detail += ", columns " + strings.Join(it.Columns, ", ")
		}
		findings = append(findings, Finding{Level: StatusFinding, What: what, Where: it.Store + " " + it.Table, Detail: detail})
	}
	var last retention.Run
	err = db.NewSelect().Model(&last).Where("dry_run = ?", false).Order("started_at DESC").Limit(1).Scan(ctx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		findings = append(findings, Finding{Level: StatusWarning, What: "retention never ran", Where: "retention_runs",
			Detail: "no retention run that applied the rules is recorded; run `steward retention run` or keep `steward serve` running"})
	case err != nil:
		return Check{}, fmt.Errorf("read last retention run: %w", err)
	case now.Sub(last.StartedAt) > 2*interval:
		findings = append(findings, Finding{Level: StatusWarning, What: "retention run overdue", Where: "retention_runs/" + last.ID,
			Detail: fmt.Sprintf("the last run started %s, more than twice the interval (%s) ago", last.StartedAt.UTC().Format(time.RFC3339), interval)})
	}
	summary := fmt.Sprintf("%d retention rules checked by a dry run, nothing past its rule", len(dry.Items))
	if overdue > 0 {
		summary = fmt.Sprintf("%d rows past their retention rule", overdue)
	}
	if last.ID != "" {
		summary += fmt.Sprintf("; last run %s", last.StartedAt.UTC().Format(time.RFC3339))
	}
	return newCheck(CheckRetention, summary, findings), nil
}

// DeadlineCheck reports open privacy requests past their due date
// (findings) and those due within DeadlineWarning (warnings). A request is
// open until it is completed or rejected; a failed one still owes the
// subject an answer, and is a finding whenever it is due: someone must
// look at it and retry it.
func DeadlineCheck(ctx context.Context, db bun.IDB, now time.Time) (Check, error) {
	var open []privacy.Request
	err := db.NewSelect().Model(&open).
		Column("id", "type", "status", "due_at", "extension_reason", "failure").
		Where("status NOT IN (?)", bun.In([]string{privacy.StatusCompleted, privacy.StatusRejected})).
		Order("due_at ASC").Scan(ctx)
	if err != nil {
		return Check{}, fmt.Errorf("read open privacy requests: %w", err)
	}
	var findings []Finding
	late, failed := 0, 0
	for _, r := range open {
		extended := ""
		if r.ExtensionReason != "" {
			extended = ", extended"
		}
		detail := fmt.Sprintf("%s request, status %s, due %s%s", r.Type, r.Status, r.DueAt.UTC().Format(time.RFC3339), extended)
		where := "privacy_requests/" + r.ID
		if now.After(r.DueAt) {
			late++
		}
		switch {
		case r.Status == privacy.StatusFailed:
			failed++
			findings = append(findings, Finding{Level: StatusFinding, What: "privacy request failed", Where: where, Detail: detail + "; " + r.Failure})
		case now.After(r.DueAt):
			findings = append(findings, Finding{Level: StatusFinding, What: "privacy request overdue", Where: where, Detail: detail})
		case r.DueAt.Sub(now) <= DeadlineWarning:
			findings = append(findings, Finding{Level: StatusWarning, What: "privacy request due within 7 days", Where: where, Detail: detail})
		}
	}
	summary := fmt.Sprintf("%d open requests, %d overdue, %d failed", len(open), late, failed)
	return newCheck(CheckDeadlines, summary, findings), nil
}

// moduleCheck turns a module's check into a check of the report.
func moduleCheck(c module.AuditCheck) Check {
	findings := make([]Finding, 0, len(c.Findings)+len(c.Warnings))
	for _, f := range c.Findings {
		findings = append(findings, Finding{Level: StatusFinding, What: f.What, Where: f.Where, Detail: f.Detail})
	}
	for _, f := range c.Warnings {
		findings = append(findings, Finding{Level: StatusWarning, What: f.What, Where: f.Where, Detail: f.Detail})
	}
	return newCheck(c.Name, c.Summary, findings)
}

// AdminLogCheck verifies the hash chain of the admin and access log.
func AdminLogCheck(ctx context.Context, db bun.IDB) (Check, error) {
	rep, err := adminlog.Verify(ctx, db)
	if err != nil {
		return Check{}, err
	}
	if rep.Finding != nil {
		f := Finding{Level: StatusFinding, What: "admin log " + strings.ToLower(rep.Finding.Kind),
			Where: fmt.Sprintf("admin_log seq %d", rep.Finding.Seq), Detail: rep.Finding.Detail}
		return newCheck(CheckAdminLog, fmt.Sprintf("the chain of %d entries breaks at seq %d", rep.Entries, rep.Finding.Seq), []Finding{f}), nil
	}
	return newCheck(CheckAdminLog, fmt.Sprintf("%d entries verified, head seq %d", rep.Entries, rep.Head.Seq), nil), nil
}

// DecisionLogCheck makes sure every recorded policy decision says which
// policy revision decided and on what input; without them the log proves
// nothing.
func DecisionLogCheck(ctx context.Context, db bun.IDB) (Check, error) {
	total, err := db.NewSelect().Model((*sqlstore.DecisionRecord)(nil)).Count(ctx)
	if err != nil {
		return Check{}, fmt.Errorf("count decisions: %w", err)
	}
	var bad []struct {
		Policy string `bun:"policy"`
		N      int64  `bun:"n"`
	}
	err = db.NewSelect().Model((*sqlstore.DecisionRecord)(nil)).
		ColumnExpr("policy, COUNT(*) AS n").
		Where("revision = '' OR input_digest = ''").
		Group("policy").Order("policy").Scan(ctx, &bad)
	if err != nil {
		return Check{}, fmt.Errorf("read incomplete decisions: %w", err)
	}
	var findings []Finding
	for _, b := range bad {
		findings = append(findings, Finding{Level: StatusFinding, What: "decision without revision or input digest",
			Where: "decision_log policy " + b.Policy, Detail: fmt.Sprintf("%d decisions cannot show which policy decided on what input", b.N)})
	}
	return newCheck(CheckDecisionLog, fmt.Sprintf("%d decisions recorded", total), findings), nil
}

// RecordCheck renders the record of processing activities from the data
// map; the record itself is served by GET /v1/audit/datamap and printed by
// `steward datamap --format markdown`.
func RecordCheck(dm *datamap.Map, proc datamap.Processing) Check {
	var buf bytes.Buffer
	if err := datamap.Render(&buf, dm, datamap.FormatMarkdown, proc); err != nil {
		// The error stays out of the report, which leaves the process;
		// the datamap command prints it to the operator.
		return newCheck(CheckRecord, "the record of processing does not render",
			[]Finding{{Level: StatusFinding, What: "record of processing", Where: "data map",
				Detail: "the markdown record fails to render; run `steward datamap --format markdown` to see why"}})
	}
	return newCheck(CheckRecord, fmt.Sprintf("the record of processing renders: %d bytes, %d categories", buf.Len(), len(dm.Categories)), nil)
}
