package sqlstore

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/uptrace/bun"
)

// DecisionRecord is one row of decision_log: a decision of the embedded
// policy engine, which keeps no record of its own. It stores what is
// needed to show later why something was allowed, exported, erased or
// kept, and nothing personal in the clear.
type DecisionRecord struct {
	bun.BaseModel `bun:"table:decision_log"`

	ID        string    `bun:"id,pk" privacy:"system.operations"`
	DecidedAt time.Time `bun:"decided_at,notnull" privacy:"system.operations,collected"`
	// Policy names the decision, for example "data.steward.retention".
	Policy string `bun:"policy,notnull" privacy:"system.operations"`
	// Revision is the hash of the policy bundle that decided.
	Revision string `bun:"revision,notnull" privacy:"system.operations"`
	// InputDigest is the hex SHA-256 of the canonical input. The input
	// itself may hold personal data and is not kept.
	InputDigest string `bun:"input_digest,notnull" privacy:"system.operations"`
	// Allowed is the outcome of a yes/no decision, nil for a decision
	// whose result is a document (what to export, what to erase).
	Allowed *bool `bun:"allowed" privacy:"system.operations"`
	// Result is the decision's output. It names categories, rules and
	// actions, never a subject's values.
	Result map[string]any `bun:"result,notnull" privacy:"system.operations"`
	// SubjectRef is SubjectRef of the data subject the decision was about,
	// nil when it was about no one in particular.
	SubjectRef *string `bun:"subject_ref" privacy:"user.unique_id.pseudonymous"`
}

// Setting is one row of settings: a small per-instance value, such as the
// id of the instance's signing key.
type Setting struct {
	bun.BaseModel `bun:"table:settings"`

	Key       string    `bun:"key,pk" privacy:"system.operations"`
	Value     string    `bun:"value,notnull" privacy:"system.operations"`
	UpdatedAt time.Time `bun:"updated_at,notnull" privacy:"system.operations,collected"`
}

// SubjectRef returns the pseudonymous reference under which decision_log
// files decisions about a subject: the hex SHA-256 of the subject's id
// behind a fixed prefix. It lets an audit find every decision about one
// subject given the id, while the log alone names no one.
func SubjectRef(subjectID string) string {
	sum := sha256.Sum256([]byte("steward decision subject\x00" + subjectID))
	return hex.EncodeToString(sum[:])
}

// Models returns the bun models of the tables the platform migrations
// create, for the data map: each stored column is a field with a privacy
// tag.
func Models() []any {
	return []any{(*DecisionRecord)(nil), (*Setting)(nil)}
}
