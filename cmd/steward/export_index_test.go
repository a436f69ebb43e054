package main

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/internal/authz"
)

// TestExportPackageIndexLanguage checks, on the wired server, that the
// page an access package opens with speaks the language of the
// subject's account, read through the accounts module, whether the
// subject filed the request or staff filed it for them; and English for a
// language the page does not speak.
func TestExportPackageIndexLanguage(t *testing.T) {
	ctx := context.Background()
	srv := embedded
	p := newPerson(t, ctx, srv, "index", 0)
	tests := []struct {
		name, lang string
		onBehalf   bool
		want       []string
	}{
		{"German, filed by the subject", "de", false, []string{`<html lang="de">`, "<h1>Ihre Daten</h1>", p.email}},
		{"German, filed on their behalf", "de", true, []string{`<html lang="de">`, "<h1>Ihre Daten</h1>"}},
		{"English", "en", true, []string{`<html lang="en">`, "<h1>Your data</h1>"}},
		{"a language the page does not speak", "fr", true, []string{`<html lang="en">`, "<h1>Your data</h1>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := srv.stores.sql.NewUpdate().Table("users").Set("language = ?", tt.lang).Where("id = ?", p.userID).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			var req privacy.Request
			var err error
			if tt.onBehalf {
				req, err = srv.wired.privacy.FileForOperator(ctx, privacy.TypeAccess, p.email, "test")
			} else {
				req, err = srv.wired.privacy.Create(ctx, authz.Principal{UserID: p.userID, Role: authz.RoleUser, Method: authz.MethodSession}, privacy.NewRequest{Type: privacy.TypeAccess})
			}
			if err != nil {
				t.Fatal(err)
			}
			if req, err = srv.wired.privacy.Process(ctx, req.ID); err != nil || req.Status != privacy.StatusCompleted {
				t.Fatalf("process access: %v, status %s", err, req.Status)
			}
			page := indexOf(t, srv.wired.privacy, req)
			for _, want := range tt.want {
				if !strings.Contains(page, want) {
					t.Errorf("index.html lacks %q", want)
				}
			}
		})
	}
}

// indexOf returns the index.html of a request's package.
func indexOf(t *testing.T, p *privacy.Module, req privacy.Request) string {
	t.Helper()
	r, err := p.OpenPackage(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := zr.Open("index.html")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
