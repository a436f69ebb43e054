package risk

import (
	"time"

	"github.com/uptrace/bun"
)

// AbuseEvent is one row of abuse_events, and one item of GET
// /v1/risk/abuse-events.
type AbuseEvent struct {
	bun.BaseModel `bun:"table:abuse_events" json:"-"`

	ID         string    `bun:"id,pk" json:"id" privacy:"system.operations"`
	OccurredAt time.Time `bun:"occurred_at,notnull" json:"occurred_at" privacy:"user.security.abuse_log,collected"`
	// Kind names the rule that fired, such as "rate_limited".
	Kind string `bun:"kind,notnull" json:"kind" privacy:"user.security.abuse_log" seed:"rate_limited"`
	// UserID is the account concerned, nil when none is known.
	UserID *string `bun:"user_id" json:"user_id" privacy:"user.unique_id,subject=user"`
	// IPTruncated is the client's network: the address with its last 8
	// (IPv4) or 80 (IPv6) bits zeroed, such as "203.0.113.0" (see package
	// ipaddr); "" when the address was unknown.
	IPTruncated string `bun:"ip_truncated,notnull" json:"ip_truncated" privacy:"user.security.abuse_log"`
	// UAFamily is the browser and system family, such as "Chrome on
	// Windows", never the full user agent.
	UAFamily string `bun:"ua_family,notnull" json:"ua_family" privacy:"user.security.abuse_log"`
	// Detail says more about the rule, as codes: never a personal value.
	Detail string `bun:"detail,notnull" json:"detail" privacy:"user.security.abuse_log"`
}

// OwnerID returns the account the event concerns, "" when none is known.
func (e AbuseEvent) OwnerID() string {
	if e.UserID == nil {
		return ""
	}
	return *e.UserID
}

// Kinds of reward records.
const (
	RewardCheckIn = "checkin"
	RewardTask    = "task"
)

// RewardRecord is one row of reward_records: a check-in or a reward task
// and the credits it gave. It is also one item of GET /v1/rewards.
type RewardRecord struct {
	bun.BaseModel `bun:"table:reward_records" json:"-"`

	ID     string `bun:"id,pk" json:"id" privacy:"system.operations"`
	UserID string `bun:"user_id,notnull" json:"user_id" privacy:"user.unique_id,subject=user"`
	// Kind is RewardCheckIn or RewardTask.
	Kind string `bun:"kind,notnull" json:"kind" privacy:"user.security.reward_record" seed:"bonus"`
	// Task names the reward task, such as "first_generation"; "" for a
	// check-in.
	Task string `bun:"task,notnull" json:"task" privacy:"user.security.reward_record"`
	// Day is the calendar day of the grant (YYYY-MM-DD) in the module's
	// time zone.
	Day       string    `bun:"day,notnull" json:"day" privacy:"user.security.reward_record"`
	Credits   int64     `bun:"credits,notnull" json:"credits" privacy:"user.security.reward_record"`
	CreatedAt time.Time `bun:"created_at,notnull" json:"created_at" privacy:"user.security.reward_record,collected"`
}

// OwnerID returns the user the record belongs to.
func (r RewardRecord) OwnerID() string { return r.UserID }
