package enrich

import "testing"

func TestScrubPath(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"email in a segment", "/users/carol.smith@example.com/reset", "/users/:email/reset"},
		{"percent-encoded email", "/u/carol%40example.com", "/u/:email"},
		{"email inside a segment", "/welcome-carol@example.co.uk", "/:email"},
		{"uuid", "/orders/3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b/receipt", "/orders/:id/receipt"},
		{"long number", "/account/1234567/settings", "/account/:id/settings"},
		{"phone", "/call/+49-30-1234567", "/call/:id"},
		{"hex token", "/reset/9f86d081884c7d65", "/reset/:token"},
		{"prefixed id", "/assets/ast_3f9a8b7c6d5e4f3a2b1c0d9e", "/assets/:token"},
		{"base32 token", "/t/stw_wtnfaecsyxwtcgxsfjeuxkslvs62gglylacu4bricja6z3qipryq", "/t/:token"},
		{"jwt part", "/verify/eyJhbGciOiJIUzI1NiJ9", "/verify/:token"},
		{"matrix parameter", "/cart;jsessionid=A1B2C3D4E5F6/checkout", "/cart/checkout"},
		{"readable slug stays", "/blog/how-to-write-a-good-prompt", "/blog/how-to-write-a-good-prompt"},
		{"year and page stay", "/blog/2026/page/12", "/blog/2026/page/12"},
		{"date stays", "/news/2026-12-05/launch", "/news/2026-12-05/launch"},
		{"slug with a year stays", "/promo/spring-launch-2026", "/promo/spring-launch-2026"},
		{"short ids stay", "/pricing/pro/v2", "/pricing/pro/v2"},
		{"root", "/", "/"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ScrubPath(tt.in); got != tt.want {
				t.Errorf("ScrubPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestScrubURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"query values", "https://mail.example.com/inbox?user=carol%40example.com&q=prompts&uid=1234567", "https://mail.example.com/inbox?q=prompts&uid=%3Aid&user=%3Aemail"},
		{"user info and fragment", "https://bob:pw@example.com/a#access_token=abcdef1234567890abcdef", "https://example.com/a"},
		{"path", "https://example.com/users/carol@example.com", "https://example.com/users/:email"},
		{"search referrer stays", "https://www.google.com/", "https://www.google.com/"},
		{"unparsable", "http://[::1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ScrubURL(tt.in); got != tt.want {
				t.Errorf("ScrubURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestScrubText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"email in a campaign", "newsletter for carol@example.com", "newsletter for :email"},
		{"plain campaign stays", "spring_sale_2026", "spring_sale_2026"},
		{"a token as the value", "9f86d081884c7d65a1b2", ":token"},
		{"an id as the value", "1234567", ":id"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ScrubText(tt.in); got != tt.want {
				t.Errorf("ScrubText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// BenchmarkScrubPath names its cases rather than using the paths as
// names: a "/" in a sub-benchmark's name would read as another level, to
// -bench patterns and to the report of make bench.
func BenchmarkScrubPath(b *testing.B) {
	for _, c := range []struct{ name, path string }{
		{"short", "/pricing"},
		{"slug", "/blog/how-to-write-a-good-prompt"},
		{"email_and_token", "/users/carol@example.com/reset/9f86d081884c7d65"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ScrubPath(c.path)
			}
		})
	}
}
