package accounts

import (
	"time"

	"github.com/uptrace/bun"
)

// Account statuses.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Sign-in methods, as recorded in the sign-in history.
const (
	MethodGoogle   = "google"
	MethodDev      = "dev"
	MethodFirstRun = "first_run"
)

// Sign-in history events.
const (
	EventSignIn         = "sign_in"
	EventSignOut        = "sign_out"
	EventSessionRevoked = "session_revoked"
)

// User is one account: one row of users.
type User struct {
	bun.BaseModel `bun:"table:users"`

	// ID is our own random id, "u_" and 26 base32 characters.
	ID string `bun:"id,pk" privacy:"user.unique_id,subject=user"`
	// GoogleSubject is the Google account's `sub`, nil until the account
	// signs in with Google.
	GoogleSubject *string `bun:"google_sub" privacy:"user.unique_id.provider_subject"`
	// Email is stored in lower case.
	Email     string `bun:"email,notnull" privacy:"user.contact.email,holds=email"`
	Name      string `bun:"name,notnull" privacy:"user.name" seed:"Ada Keller|Bruno Moreau|Chen Okafor|Dara Rossi|Emil Sato|Farah Varga"`
	AvatarURL string `bun:"avatar_url,notnull" privacy:"user.account.avatar" seed:"https://example.com/a.png"`
	// Language is a BCP 47 tag from Config.SupportedLanguages.
	Language string `bun:"language,notnull" privacy:"user.account.settings.language" seed:"en|de|fr"`
	Role     string `bun:"role,notnull" privacy:"user.authorization.role" seed:"user"`
	// Status is StatusActive or StatusDisabled.
	Status    string    `bun:"status,notnull" privacy:"user.account.status" seed:"active"`
	CreatedAt time.Time `bun:"created_at,notnull" privacy:"user.account.created_at,collected"`
}

// Session is one row of sessions: a signed-in browser.
type Session struct {
	bun.BaseModel `bun:"table:sessions"`

	ID     string `bun:"id,pk" privacy:"user.account.sign_in_state"`
	UserID string `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	// SecretHash is the hex SHA-256 of the cookie's secret.
	SecretHash string    `bun:"secret_hash,notnull" privacy:"user.authorization.credentials"`
	UAFamily   string    `bun:"ua_family,notnull" privacy:"user.account.sign_in_state" seed:"Firefox on Linux|Chrome on Windows"`
	CreatedAt  time.Time `bun:"created_at,notnull" privacy:"user.account.sign_in_state"`
	LastSeenAt time.Time `bun:"last_seen_at,notnull" privacy:"user.account.sign_in_state,collected"`
	// ExpiresAt is the absolute end; the idle end is LastSeenAt plus
	// Config.SessionIdle.
	ExpiresAt time.Time `bun:"expires_at,notnull" privacy:"user.account.sign_in_state"`
}

// APIToken is one row of api_tokens: a bearer token for a program.
type APIToken struct {
	bun.BaseModel `bun:"table:api_tokens"`

	ID     string `bun:"id,pk" privacy:"user.account.sign_in_state"`
	UserID string `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	// SecretHash is the hex SHA-256 of the whole token.
	SecretHash string     `bun:"secret_hash,notnull" privacy:"user.authorization.credentials"`
	Name       string     `bun:"name,notnull" privacy:"user.account.sign_in_state"`
	CreatedAt  time.Time  `bun:"created_at,notnull" privacy:"user.account.sign_in_state,collected"`
	LastUsedAt *time.Time `bun:"last_used_at" privacy:"user.account.sign_in_state"`
}

// SignInEvent is one row of sign_in_events, the sign-in history.
type SignInEvent struct {
	bun.BaseModel `bun:"table:sign_in_events" seed:"typical=5"`

	ID         string    `bun:"id,pk" privacy:"system.operations"`
	UserID     string    `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	OccurredAt time.Time `bun:"occurred_at,notnull" privacy:"user.account.sign_in_state,collected"`
	// Event is EventSignIn, EventSignOut or EventSessionRevoked.
	Event string `bun:"event,notnull" privacy:"user.account.sign_in_state" seed:"sign_in|sign_out"`
	// Method is MethodGoogle, MethodDev or MethodFirstRun for a sign-in,
	// empty for the end of a session.
	Method   string `bun:"method,notnull" privacy:"user.account.sign_in_state" seed:"google"`
	UAFamily string `bun:"ua_family,notnull" privacy:"user.account.sign_in_state"`
}

// DeviceBinding is one row of device_bindings: a device (by the hash of
// its first-party device cookie) that an account signed in from.
type DeviceBinding struct {
	bun.BaseModel `bun:"table:device_bindings"`

	ID          string    `bun:"id,pk" privacy:"system.operations"`
	DeviceHash  string    `bun:"device_hash,notnull" privacy:"user.security.device_binding"`
	UserID      string    `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	UAFamily    string    `bun:"ua_family,notnull" privacy:"user.security.device_binding" seed:"Firefox on Linux|Chrome on Windows|Safari on iOS"`
	FirstSeenAt time.Time `bun:"first_seen_at,notnull" privacy:"user.security.device_binding"`
	LastSeenAt  time.Time `bun:"last_seen_at,notnull" privacy:"user.security.device_binding,collected"`
}

// models lists the module's tables for the data map.
func models() []any {
	return []any{
		(*User)(nil), (*Session)(nil), (*APIToken)(nil), (*SignInEvent)(nil), (*DeviceBinding)(nil),
	}
}

// Balance is what the billing module reports about an account for
// GET /v1/me.
type Balance struct {
	Credits            int64
	SubscriptionStatus string
}

// MeView is the answer of GET /v1/me and of a sign-in: the caller's
// account.
type MeView struct {
	ID        string    `json:"id" privacy:"user.unique_id"`
	Email     string    `json:"email" privacy:"user.contact.email"`
	Name      string    `json:"name" privacy:"user.name"`
	AvatarURL string    `json:"avatar_url" privacy:"user.account.avatar"`
	Language  string    `json:"language" privacy:"user.account.settings.language"`
	Role      string    `json:"role" privacy:"user.authorization.role"`
	Status    string    `json:"status" privacy:"user.account.status"`
	CreatedAt time.Time `json:"created_at" privacy:"user.account.created_at"`
	// CreditBalance and SubscriptionStatus come from billing; they are
	// left out when no billing is wired.
	CreditBalance      *int64 `json:"credit_balance,omitempty" privacy:"user.financial.credit_balance"`
	SubscriptionStatus string `json:"subscription_status,omitempty" privacy:"user.financial.subscription_status"`
}

// OwnerID implements authz.Owned.
func (v MeView) OwnerID() string { return v.ID }

func meView(u User) MeView {
	return MeView{
		ID: u.ID, Email: u.Email, Name: u.Name, AvatarURL: u.AvatarURL, Language: u.Language,
		Role: u.Role, Status: u.Status, CreatedAt: u.CreatedAt,
	}
}

// SessionView is one session in GET /v1/me/sessions. It never holds the
// secret or its hash.
type SessionView struct {
	ID         string    `json:"id" privacy:"user.account.sign_in_state"`
	CreatedAt  time.Time `json:"created_at" privacy:"user.account.sign_in_state"`
	LastSeenAt time.Time `json:"last_seen_at" privacy:"user.account.sign_in_state"`
	ExpiresAt  time.Time `json:"expires_at" privacy:"user.account.sign_in_state"`
	UAFamily   string    `json:"ua_family" privacy:"user.account.sign_in_state"`
	// Current marks the session the request came with.
	Current bool `json:"current" privacy:"user.account.sign_in_state"`
	userID  string
}

// OwnerID implements authz.Owned.
func (v SessionView) OwnerID() string { return v.userID }

// TokenView is one API token in GET /v1/me/tokens.
type TokenView struct {
	ID         string     `json:"id" privacy:"user.account.sign_in_state"`
	Name       string     `json:"name" privacy:"user.account.sign_in_state"`
	CreatedAt  time.Time  `json:"created_at" privacy:"user.account.sign_in_state"`
	LastUsedAt *time.Time `json:"last_used_at" privacy:"user.account.sign_in_state"`
	userID     string
}

// OwnerID implements authz.Owned.
func (v TokenView) OwnerID() string { return v.userID }

// NewTokenView answers POST /v1/me/tokens: the token itself, shown once.
type NewTokenView struct {
	ID        string    `json:"id" privacy:"user.account.sign_in_state"`
	Name      string    `json:"name" privacy:"user.account.sign_in_state"`
	CreatedAt time.Time `json:"created_at" privacy:"user.account.sign_in_state"`
	// Token is the bearer token. It is not stored and cannot be shown
	// again. Its category is the sign-in state rather than the hashed
	// credentials, whose export is withheld, because the owner must be
	// able to read it this once.
	Token  string `json:"token" privacy:"user.account.sign_in_state"`
	userID string
}

// OwnerID implements authz.Owned.
func (v NewTokenView) OwnerID() string { return v.userID }

// UserView is an account as an administrator sees it after changing it.
type UserView struct {
	ID        string    `json:"id" privacy:"user.unique_id"`
	Email     string    `json:"email" privacy:"user.contact.email"`
	Name      string    `json:"name" privacy:"user.name"`
	Role      string    `json:"role" privacy:"user.authorization.role"`
	Status    string    `json:"status" privacy:"user.account.status"`
	CreatedAt time.Time `json:"created_at" privacy:"user.account.created_at"`
}

// OwnerID implements authz.Owned.
func (v UserView) OwnerID() string { return v.ID }
