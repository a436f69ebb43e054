package privacy

import (
	"slices"
	"time"

	"github.com/uptrace/bun"
)

// Request types.
const (
	TypeAccess  = "access"
	TypeErasure = "erasure"
)

// Request statuses. A request moves received → verified → processing →
// completed or failed; a request that may not go ahead is rejected.
const (
	StatusReceived   = "received"
	StatusVerified   = "verified"
	StatusProcessing = "processing"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
	StatusRejected   = "rejected"
)

// openStatuses are the statuses of a request not yet answered;
// finishedStatuses those of one that ended.
var (
	openStatuses     = []string{StatusReceived, StatusVerified, StatusProcessing}
	finishedStatuses = []string{StatusCompleted, StatusFailed, StatusRejected}
)

// Statuses returns every status a request can have, in the order a
// request moves through them.
func Statuses() []string { return slices.Concat(openStatuses, finishedStatuses) }

// Request is one row of privacy_requests.
type Request struct {
	bun.BaseModel `bun:"table:privacy_requests" seed:"skip"`

	ID     string `bun:"id,pk" json:"id" privacy:"system.operations"`
	Type   string `bun:"type,notnull" json:"type" privacy:"user.privacy_request"`
	Status string `bun:"status,notnull" json:"status" privacy:"user.privacy_request"`
	// UserID is the subject's account id; empty when they have none.
	UserID      string `bun:"user_id,notnull" json:"user_id" privacy:"user.privacy_request,subject=user"`
	Email       string `bun:"email,notnull" json:"email" privacy:"user.privacy_request"`
	RequestedBy string `bun:"requested_by,notnull" json:"requested_by" privacy:"user.privacy_request"`
	// OnBehalf is true when a DPO or admin filed the request for the
	// subject; Reason then says why.
	OnBehalf        bool       `bun:"on_behalf,notnull" json:"on_behalf" privacy:"user.privacy_request"`
	Reason          string     `bun:"reason,notnull" json:"reason,omitempty" privacy:"user.privacy_request"`
	ReceivedAt      time.Time  `bun:"received_at,notnull" json:"received_at" privacy:"user.privacy_request"`
	DueAt           time.Time  `bun:"due_at,notnull" json:"due_at" privacy:"user.privacy_request"`
	ExtensionReason string     `bun:"extension_reason,notnull" json:"extension_reason,omitempty" privacy:"user.privacy_request"`
	CompletedAt     *time.Time `bun:"completed_at" json:"completed_at,omitempty" privacy:"user.privacy_request"`
	Failure         string     `bun:"failure,notnull" json:"failure,omitempty" privacy:"user.privacy_request"`
	// PackagePath is the export package, relative to the exports folder
	// of the file store: "<request id>/<package id>.zip".
	PackagePath string `bun:"package_path,notnull" json:"-" privacy:"user.privacy_request"`
	PackageSize int64  `bun:"package_size,notnull" json:"package_size,omitempty" privacy:"user.privacy_request"`
	// Certificate is the erasure certificate as JSON text.
	Certificate    string    `bun:"certificate,notnull" json:"-" privacy:"user.privacy_request"`
	PolicyRevision string    `bun:"policy_revision,notnull" json:"policy_revision" privacy:"system.operations"`
	UpdatedAt      time.Time `bun:"updated_at,notnull" json:"updated_at" privacy:"user.privacy_request,collected"`
	// VisitorID is the subject's browser when a visitor without an account
	// filed the request: the visitor id of its consent cookie. UserID and
	// Email are empty then.
	VisitorID string `bun:"visitor_id,notnull" json:"visitor_id,omitempty" privacy:"user.privacy_request,subject=visitor"`
	// BrowsingAfter starts the stretch of the browser's activity that a
	// visitor's request covers: the last sign-in on the browser before the
	// request, nil when no one ever signed in there (see visitorSubject).
	BrowsingAfter *time.Time `bun:"browsing_after" json:"-" privacy:"user.privacy_request"`
	// Language is the BCP 47 tag of the language a visitor's pages spoke
	// when they filed the request, in which their access package speaks.
	Language string `bun:"language,notnull" json:"-" privacy:"user.privacy_request"`
}

// Event is one row of privacy_request_events, the audit trail.
type Event struct {
	bun.BaseModel `bun:"table:privacy_request_events" seed:"skip"`

	ID        string    `bun:"id,pk" json:"-" privacy:"system.operations"`
	RequestID string    `bun:"request_id,notnull" json:"-" privacy:"system.operations"`
	UserID    string    `bun:"user_id,notnull" json:"-" privacy:"user.privacy_request,subject=user"`
	At        time.Time `bun:"at,notnull" json:"at" privacy:"user.privacy_request,collected"`
	// Event is a status, or "extended" or "downloaded".
	Event   string `bun:"event,notnull" json:"event" privacy:"user.privacy_request"`
	ActorID string `bun:"actor_id,notnull" json:"actor_id" privacy:"user.privacy_request"`
	Note    string `bun:"note,notnull" json:"note,omitempty" privacy:"user.privacy_request"`
}

// Step is one row of privacy_erasure_steps: a finished step of an erasure.
type Step struct {
	bun.BaseModel `bun:"table:privacy_erasure_steps"`

	RequestID string    `bun:"request_id,pk" privacy:"system.operations"`
	Step      string    `bun:"step,pk" privacy:"system.operations"`
	DoneAt    time.Time `bun:"done_at,notnull" privacy:"system.operations,collected"`
	// Result is what the step did, as JSON: counts, and for the census
	// the visitor ids the later steps erase.
	Result string `bun:"result,notnull" privacy:"user.privacy_request"`
}

// Claim is one row of privacy_request_claims: the lease of the process
// working on a request (see claim.go). It is no data about the subject.
type Claim struct {
	bun.BaseModel `bun:"table:privacy_request_claims"`

	RequestID string `bun:"request_id,pk" privacy:"system.operations"`
	// ClaimedBy names the holding process and its claim: host, pid and
	// random suffixes.
	ClaimedBy    string    `bun:"claimed_by,notnull" privacy:"system.operations"`
	ClaimedAt    time.Time `bun:"claimed_at,notnull" privacy:"system.operations,collected"`
	ClaimedUntil time.Time `bun:"claimed_until,notnull" privacy:"system.operations"`
}

// Models returns the module's bun models, for the data map.
func Models() []any { return []any{(*Request)(nil), (*Event)(nil), (*Step)(nil), (*Claim)(nil)} }
