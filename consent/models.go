package consent

import (
	"time"

	"github.com/uptrace/bun"
)

// State is one row of consent_state: a subject's current choice for one
// purpose. Exactly one of VisitorID and UserID is set.
type State struct {
	bun.BaseModel `bun:"table:consent_state"`

	ID string `bun:"id,pk" privacy:"system.operations"`
	// VisitorID is the random id of the steward_vid cookie.
	VisitorID *string `bun:"visitor_id" privacy:"user.device.cookie_id,subject=visitor"`
	// UserID is the account's id.
	UserID  *string `bun:"user_id" privacy:"user.unique_id,subject=user"`
	Purpose string  `bun:"purpose,notnull" privacy:"user.consent.state" seed:"analytics"`
	Granted bool    `bun:"granted,notnull" privacy:"user.consent.state" seed:"true"`
	// Method is how the choice was made: banner_accept, banner_reject,
	// banner_save, preferences, gpc, api or merge.
	Method string `bun:"method,notnull" privacy:"user.consent.state"`
	// GPC is true when the Global Privacy Control signal was on as the
	// choice was made.
	GPC           bool      `bun:"gpc,notnull" privacy:"user.consent.state"`
	PolicyVersion string    `bun:"policy_version,notnull" privacy:"user.consent.state"`
	BannerVersion string    `bun:"banner_version,notnull" privacy:"user.consent.state"`
	DecidedAt     time.Time `bun:"decided_at,notnull" privacy:"user.consent.state,collected"`
	// ExpiresAt is when the choice lapses and the visitor is asked again.
	ExpiresAt time.Time `bun:"expires_at,notnull" privacy:"user.consent.state"`
	// ProofID is the consent_log row that records this choice.
	ProofID string `bun:"proof_id,notnull" privacy:"system.operations" ref:"consent_log"`
}

// Proof is one row of consent_log, the append-only proof of consent.
type Proof struct {
	bun.BaseModel `bun:"table:consent_log"`

	ID string `bun:"id,pk" privacy:"system.operations"`
	// ChangeID groups the rows of one choice.
	ChangeID  string  `bun:"change_id,notnull" privacy:"system.operations"`
	VisitorID *string `bun:"visitor_id" privacy:"user.device.cookie_id,subject=visitor"`
	UserID    *string `bun:"user_id" privacy:"user.unique_id,subject=user"`
	// SubjectHash replaces VisitorID and UserID after an erasure: a keyed
	// hash that proves the record belongs to an id presented later, without
	// naming anyone.
	SubjectHash   *string   `bun:"subject_hash" privacy:"user.consent.record"`
	Purpose       string    `bun:"purpose,notnull" privacy:"user.consent.record" seed:"analytics"`
	Granted       bool      `bun:"granted,notnull" privacy:"user.consent.record" seed:"true"`
	Method        string    `bun:"method,notnull" privacy:"user.consent.record"`
	GPC           bool      `bun:"gpc,notnull" privacy:"user.consent.record"`
	PolicyVersion string    `bun:"policy_version,notnull" privacy:"user.consent.record"`
	BannerVersion string    `bun:"banner_version,notnull" privacy:"user.consent.record"`
	RecordedAt    time.Time `bun:"recorded_at,notnull" privacy:"user.consent.record,collected"`
	// UserAgent is the parsed browser, "Firefox 128 (Linux, desktop)",
	// never the raw header: the family is what proves the circumstances of
	// the choice, and the raw string helps fingerprint a browser.
	UserAgent string `bun:"user_agent,notnull" privacy:"user.consent.record"`
	// IPTruncated is the client address with its host part zeroed (/24 or
	// /48), such as "203.0.113.0" (see package ipaddr).
	IPTruncated string `bun:"ip_truncated,notnull" privacy:"user.consent.record"`
}
