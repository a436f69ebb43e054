package privacy

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/policies"
)

func col(category, action string, subject, personal bool) column {
	return column{Field: datamap.Field{Column: category, Category: category, Subject: subject}, Personal: personal,
		Erasure: policies.ErasureDecision{Action: action}}
}

func TestRowMode(t *testing.T) {
	tests := []struct {
		name string
		cols []column
		want string
	}{
		{"all deleted, pseudonymizable subject", []column{col("id", "keep", false, false), col("user.unique_id", "anonymize", true, true), col("user.content.prompt", "delete", false, true)}, modeDelete},
		{"a kept column keeps the row", []column{col("user.unique_id", "anonymize", true, true), col("user.financial.order", "keep", false, true), col("user.contact.email", "delete", false, true)}, modePartial},
		{"an anonymized column keeps the row", []column{col("user.unique_id", "anonymize", true, true), col("user.consent.record", "anonymize", false, true)}, modePartial},
		{"every personal column kept", []column{col("id", "keep", false, false), col("user.security.admin_audit_log", "keep", true, true)}, modeKeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rowMode(tt.cols); got != tt.want {
				t.Fatalf("rowMode = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestStatusToken(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := &Module{cfg: Config{SigningKey: []byte("0123456789abcdef0123"), DownloadTTL: time.Hour}, deps: Deps{Now: func() time.Time { return now }}}
	token := m.StatusToken("pr_1")
	exp, sig, _ := strings.Cut(token, ".")
	e, _ := strconv.ParseInt(exp, 10, 64)
	_, download := m.DownloadURL("pr_1")
	tests := []struct {
		name  string
		id    string
		token string
		at    time.Time
		want  bool
	}{
		{"valid", "pr_1", token, now, true},
		{"valid until its expiry", "pr_1", token, time.Unix(e, 0), true},
		{"other request", "pr_2", token, now, false},
		{"expiry moved", "pr_1", strconv.FormatInt(e+3600, 10) + "." + sig, now, false},
		{"expired", "pr_1", token, now.Add(StatusTTL + time.Second), false},
		{"a download signature", "pr_1", strconv.FormatInt(download.Unix(), 10) + "." + m.signature("pr_1", download.Unix()), now, false},
		{"no expiry", "pr_1", sig, now, false},
		{"empty", "pr_1", "", now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.at
			m.deps.Now = func() time.Time { return at }
			if got := m.verifyStatus(tt.id, tt.token); got != tt.want {
				t.Fatalf("verifyStatus = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDownloadLink(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := &Module{cfg: Config{SigningKey: []byte("0123456789abcdef0123"), DownloadTTL: time.Hour}, deps: Deps{Now: func() time.Time { return now }}}
	link, exp := m.DownloadURL("pr_1")
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := strconv.ParseInt(u.Query().Get("exp"), 10, 64)
	sig := u.Query().Get("sig")
	tests := []struct {
		name string
		id   string
		exp  int64
		sig  string
		at   time.Time
		want bool
	}{
		{"valid", "pr_1", e, sig, now, true},
		{"other request", "pr_2", e, sig, now, false},
		{"expiry moved", "pr_1", e + 3600, sig, now, false},
		{"expired", "pr_1", e, sig, exp.Add(time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.at
			m.deps.Now = func() time.Time { return at }
			if got := m.verifyDownload(tt.id, tt.exp, tt.sig); got != tt.want {
				t.Fatalf("verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRecentSignIn(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		signedIn func(context.Context, authz.Principal) (time.Time, error)
		wantErr  error
	}{
		{"signed in 5 minutes ago", func(context.Context, authz.Principal) (time.Time, error) { return now.Add(-5 * time.Minute), nil }, nil},
		{"signed in an hour ago", func(context.Context, authz.Principal) (time.Time, error) { return now.Add(-time.Hour), nil }, errs.ErrForbidden},
		{"no sign-in (a token)", func(context.Context, authz.Principal) (time.Time, error) {
			return time.Time{}, errs.E(errs.ErrNotFound, "none")
		}, errs.ErrForbidden},
		{"nothing wired", nil, errs.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Module{cfg: Config{RecentSignIn: DefaultRecentSignIn}, deps: Deps{SignedInAt: tt.signedIn, Now: func() time.Time { return now }}}
			err := m.checkRecentSignIn(context.Background(), authz.Principal{UserID: "u1"})
			if !errors.Is(err, tt.wantErr) && !(err == nil && tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
