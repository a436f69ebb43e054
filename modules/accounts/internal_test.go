package accounts

import (
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/ids"
)

func TestUAFamily(t *testing.T) {
	tests := []struct {
		name string
		ua   string
		want string
	}{
		{name: "chrome on mac", ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", want: "Chrome on macOS"},
		{name: "firefox on windows", ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", want: "Firefox on Windows"},
		{name: "safari on iphone", ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", want: "Safari on iOS"},
		{name: "bot", ua: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", want: "bot"},
		{name: "empty", ua: "", want: "unknown"},
		{name: "free text never passes through", ua: "ann@example.com MyApp", want: "other"},
		{name: "cli", ua: "steward-cli/1.0", want: "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := uaFamily(tt.ua); got != tt.want {
				t.Errorf("uaFamily = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name, in, want, rule string
	}{
		{name: "plain", in: "Ann", want: "Ann"},
		{name: "trimmed", in: "  Ann Émile ", want: "Ann Émile"},
		{name: "exactly 100", in: strings.Repeat("ß", 100), want: strings.Repeat("ß", 100)},
		{name: "101", in: strings.Repeat("ß", 101), rule: "max_length"},
		{name: "blank", in: " \t ", rule: "required"},
		{name: "tab inside", in: "Ann\tE", rule: "control_characters"},
		{name: "NUL", in: "Ann\x00", rule: "control_characters"},
		{name: "bad utf-8", in: "Ann\xff", rule: "encoding"},
		{name: "right-to-left override", in: "Ann\u202Egnp.exe", rule: "bidi_control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rule, _ := checkName(tt.in)
			if got != tt.want || rule != tt.rule {
				t.Errorf("checkName = %q, %q; want %q, %q", got, rule, tt.want, tt.rule)
			}
		})
	}
	if got := cleanName("Ann\nExample\x00" + strings.Repeat("x", 200)); strings.ContainsAny(got, "\n\x00") || len([]rune(got)) > maxNameRunes {
		t.Errorf("cleanName left %q", got)
	}
}

func TestLanguages(t *testing.T) {
	l, err := newLanguages([]string{"en", "de", "pt-BR"})
	if err != nil {
		t.Fatal(err)
	}
	accept := []struct {
		name, header, want string
	}{
		{name: "exact", header: "de", want: "de"},
		{name: "regional variant", header: "de-AT,de;q=0.9", want: "de"},
		{name: "quality order", header: "fr;q=0.9, pt-BR;q=0.8, en;q=0.1", want: "pt-BR"},
		{name: "nothing supported", header: "ja, ko", want: "en"},
		{name: "garbage", header: ";;;=", want: "en"},
		{name: "absent", header: "", want: "en"},
	}
	for _, tt := range accept {
		t.Run("accept "+tt.name, func(t *testing.T) {
			if got := l.fromAcceptLanguage(tt.header); got != tt.want {
				t.Errorf("fromAcceptLanguage(%q) = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
	choose := []struct {
		name, in, want, rule string
	}{
		{name: "supported", in: "de", want: "de"},
		{name: "case folded", in: "PT-br", want: "pt-BR"},
		{name: "unsupported", in: "ja", rule: "supported"},
		{name: "not a tag", in: "deutsch!", rule: "format"},
	}
	for _, tt := range choose {
		t.Run("choose "+tt.name, func(t *testing.T) {
			got, rule, _ := l.check(tt.in)
			if got != tt.want || rule != tt.rule {
				t.Errorf("check(%q) = %q, %q; want %q, %q", tt.in, got, rule, tt.want, tt.rule)
			}
		})
	}
	if _, err := newLanguages([]string{"en", "not a tag"}); err == nil {
		t.Error("a bad configured language was accepted")
	}
}

func TestSecretsAndTokensHaveTheirShape(t *testing.T) {
	s := newSecret()
	if !wellFormedSecret(s) || wellFormedSecret(s[1:]) || wellFormedSecret(strings.Repeat("!", 43)) {
		t.Error("wellFormedSecret misjudges")
	}
	tok := newToken()
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+52 {
		t.Errorf("token %q has the wrong shape", tok)
	}
	if id := ids.New(prefixUser); !strings.HasPrefix(id, "u_") || len(id) != 28 {
		t.Errorf("id %q has the wrong shape", id)
	}
	if csrfToken(s) == csrfToken(newSecret()) || csrfToken(s) != csrfToken(s) {
		t.Error("CSRF tokens are not bound to their session")
	}
}
