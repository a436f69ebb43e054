package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/ids"
)

// MaxRuns is the most runs one read of the history returns.
const MaxRuns = 100

// Run is one row of audit_runs: an audit someone ran and kept, so the
// console can show the audit's history and what changed from one run to
// the next. Nothing in it is personal: the report names tables, ids,
// categories and counts, never a personal value. The actor is the staff
// member who ran it, tagged as their id is in the admin log: an
// accountability record kept for its period.
type Run struct {
	bun.BaseModel `bun:"table:audit_runs"`

	ID string `bun:"id,pk" json:"id" privacy:"system.operations"`
	// ActorID is the account id of the DPO or administrator who ran it.
	ActorID string    `bun:"actor_id,notnull" json:"actor_id" privacy:"user.security.admin_audit_log"`
	RanAt   time.Time `bun:"ran_at,notnull" json:"ran_at" privacy:"system.operations,collected"`
	// PolicyRevision is the revision of the policy bundle the checks read.
	PolicyRevision string `bun:"policy_revision,notnull" json:"policy_revision" privacy:"system.operations"`
	// Status is the report's worst status: ok, warning or finding.
	Status string `bun:"status,notnull" json:"status" privacy:"system.operations"`
	// Findings and Warnings count the report's findings of each level.
	Findings int64 `bun:"findings,notnull" json:"findings" privacy:"system.operations"`
	Warnings int64 `bun:"warnings,notnull" json:"warnings" privacy:"system.operations"`
	// Report is the report as the run made it, kept as JSON.
	Report Report `bun:"report,notnull" json:"report" privacy:"system.operations"`
}

// Models returns the audit's tagged models, for the data map.
func Models() []any { return []any{(*Run)(nil)} }

// Status returns the worst status of the report's checks.
func (r Report) Status() string {
	status := StatusOK
	for _, c := range r.Checks {
		switch c.Status {
		case StatusFinding:
			return StatusFinding
		case StatusWarning:
			status = StatusWarning
		}
	}
	return status
}

// Levels counts the report's findings of each level.
func (r Report) Levels() (findings, warnings int64) {
	for _, c := range r.Checks {
		for _, f := range c.Findings {
			switch f.Level {
			case StatusFinding:
				findings++
			case StatusWarning:
				warnings++
			}
		}
	}
	return findings, warnings
}

// Run runs every check, as Report does, and stores the report in
// audit_runs as a run of the account actorID.
func (m *Module) Run(ctx context.Context, actorID string) (Run, error) {
	if m.deps.DB == nil {
		return Run{}, errors.New("audit run: DB is required")
	}
	rep, err := m.Report(ctx)
	if err != nil {
		return Run{}, err
	}
	// The stored time has the SQL store's precision, so the run answered
	// equals the run read back.
	run := Run{ID: ids.New("aud"), ActorID: actorID, RanAt: rep.GeneratedAt.Truncate(time.Microsecond), PolicyRevision: rep.PolicyRevision,
		Status: rep.Status(), Report: rep}
	run.Findings, run.Warnings = rep.Levels()
	if _, err := m.deps.DB.NewInsert().Model(&run).Exec(ctx); err != nil {
		return Run{}, fmt.Errorf("store audit run: %w", err)
	}
	return run, nil
}

// Runs returns the latest stored runs, newest first: at most limit, and
// never more than MaxRuns.
func (m *Module) Runs(ctx context.Context, limit int) ([]Run, error) {
	if m.deps.DB == nil {
		return nil, errors.New("audit runs: DB is required")
	}
	limit = min(max(limit, 1), MaxRuns)
	runs := []Run{}
	err := m.deps.DB.NewSelect().Model(&runs).OrderExpr("ran_at DESC, id DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read audit runs: %w", err)
	}
	return runs, nil
}
