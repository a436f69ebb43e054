package enrich_test

import (
	"net/netip"
	"testing"

	"github.com/stewardhq/steward/analytics/enrich"
)

func rules(t *testing.T) *enrich.Rules {
	t.Helper()
	r, err := enrich.LoadRules()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAttribute(t *testing.T) {
	r := rules(t)
	tests := []struct {
		name                             string
		page, referrer                   string
		campaign                         bool
		source, medium, channel, clickID string
		referrerHost                     string
	}{
		{"no referrer is direct", "https://app.example.com/", "", true, "(direct)", "(none)", "Direct", "", ""},
		{"internal referrer is direct", "https://app.example.com/b", "https://app.example.com/a", true, "(direct)", "(none)", "Direct", "", ""},
		{"search engine", "https://app.example.com/", "https://www.google.de/", true, "google", "organic", "Organic Search", "", "www.google.de"},
		{"search engine abroad", "https://app.example.com/", "https://www.google.co.uk/search?q=x", true, "google", "organic", "Organic Search", "", "www.google.co.uk"},
		{"social network", "https://app.example.com/", "https://l.facebook.com/", true, "facebook", "referral", "Organic Social", "", "l.facebook.com"},
		{"video site", "https://app.example.com/", "https://www.youtube.com/watch?v=1", true, "youtube", "referral", "Organic Video", "", "www.youtube.com"},
		{"unknown site", "https://app.example.com/", "https://blog.example.org/post", true, "blog.example.org", "referral", "Referral", "", "blog.example.org"},
		{"utm email", "https://app.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=spring", "", true, "newsletter", "email", "Email", "", ""},
		{"utm paid search", "https://app.example.com/?utm_source=google&utm_medium=cpc", "https://www.google.com/", true, "google", "cpc", "Paid Search", "", "www.google.com"},
		{"gclid implies google cpc", "https://app.example.com/?gclid=abc", "https://www.google.com/", true, "google", "cpc", "Paid Search", "abc", "www.google.com"},
		{"fbclid implies paid social", "https://app.example.com/?fbclid=xyz", "", true, "facebook", "paid_social", "Paid Social", "xyz", ""},
		{"display", "https://app.example.com/?utm_source=partner&utm_medium=banner", "", true, "partner", "banner", "Display", "", ""},
		{"cross-network campaign", "https://app.example.com/?utm_source=google&utm_medium=cpc&utm_campaign=pmax-cross-network", "", true, "google", "cpc", "Cross-network", "", ""},
		{"affiliate", "https://app.example.com/?utm_source=partner&utm_medium=affiliate", "", true, "partner", "affiliate", "Affiliates", "", ""},
		{"sms", "https://app.example.com/?utm_source=sms&utm_medium=text", "", true, "sms", "text", "SMS", "", ""},
		{"push", "https://app.example.com/?utm_source=app&utm_medium=web-push", "", true, "app", "web-push", "Mobile Push Notifications", "", ""},
		{"unassigned", "https://app.example.com/?utm_source=partner&utm_medium=weird", "", true, "partner", "weird", "Unassigned", "", ""},
		// Without marketing consent no campaign parameter or click id is
		// read: the channel rests on the referrer host alone.
		{"campaign not allowed", "https://app.example.com/?utm_source=newsletter&utm_medium=email&gclid=abc", "https://www.bing.com/", false, "bing", "organic", "Organic Search", "", "www.bing.com"},
		{"campaign not allowed, no referrer", "https://app.example.com/?utm_source=newsletter&utm_medium=email", "", false, "(direct)", "(none)", "Direct", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := r.Attribute(enrich.AttributionInput{PageURL: tc.page, Referrer: tc.referrer, UseCampaign: tc.campaign})
			if a.Source != tc.source || a.Medium != tc.medium || a.Channel != tc.channel || a.ClickID != tc.clickID || a.ReferrerHost != tc.referrerHost {
				t.Fatalf("got source %q medium %q channel %q click %q host %q; want %q %q %q %q %q",
					a.Source, a.Medium, a.Channel, a.ClickID, a.ReferrerHost, tc.source, tc.medium, tc.channel, tc.clickID, tc.referrerHost)
			}
			if !tc.campaign && (a.Campaign != "" || a.ClickIDType != "") {
				t.Fatalf("campaign data read without permission: %+v", a)
			}
			// A cached answer is the same answer.
			if b := r.Attribute(enrich.AttributionInput{PageURL: tc.page, Referrer: tc.referrer, UseCampaign: tc.campaign}); b != a {
				t.Fatalf("second call %+v, first %+v", b, a)
			}
		})
	}
}

func TestParseUA(t *testing.T) {
	r := rules(t)
	p := enrich.NewUAParser(r, 2)
	tests := []struct {
		name, ua, label, os, class string
		bot                        bool
	}{
		{"desktop firefox", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox 128", "Linux", "desktop", false},
		{"iphone safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari 17", "iOS", "mobile", false},
		{"ipad", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari 17", "iOS", "tablet", false},
		{"windows chrome", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Chrome 126", "Windows", "desktop", false},
		{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "", "", "bot", true},
		{"curl", "curl/8.5.0", "", "", "bot", true},
		{"headless chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36", "", "", "bot", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Parse(tc.ua)
			if d.Bot != tc.bot || d.Class != tc.class {
				t.Fatalf("bot %v class %q, want %v %q (%+v)", d.Bot, d.Class, tc.bot, tc.class, d)
			}
			if !tc.bot && (d.BrowserLabel != tc.label || d.OS != tc.os) {
				t.Fatalf("label %q os %q, want %q %q", d.BrowserLabel, d.OS, tc.label, tc.os)
			}
		})
	}
	// The cache is bounded: parsing more user agents than it holds still
	// answers correctly.
	for _, tc := range tests {
		if d := p.Parse(tc.ua); d.Class != tc.class {
			t.Fatalf("%s after eviction: class %q", tc.name, d.Class)
		}
	}
}

func TestReductions(t *testing.T) {
	tests := []struct{ in, path, host string }{
		{"https://app.example.com/pricing?plan=pro&email=a@b.c#top", "/pricing", "app.example.com"},
		{"/account/settings?token=secret", "/account/settings", ""},
		{"https://APP.example.com", "/", "app.example.com"},
		{"", "", ""},
	}
	for _, tc := range tests {
		if got := enrich.PathOnly(tc.in); got != tc.path {
			t.Errorf("PathOnly(%q) = %q, want %q", tc.in, got, tc.path)
		}
		if got := enrich.HostOnly(tc.in); got != tc.host {
			t.Errorf("HostOnly(%q) = %q, want %q", tc.in, got, tc.host)
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name, peer, xff, want string
	}{
		{"direct client", "203.0.113.9:5000", "", "203.0.113.9"},
		{"untrusted peer's header is ignored", "203.0.113.9:5000", "198.51.100.1", "203.0.113.9"},
		{"trusted proxy", "10.1.2.3:5000", "198.51.100.1", "198.51.100.1"},
		{"chain of proxies, spoofed left part", "10.1.2.3:5000", "1.2.3.4, 198.51.100.1, 10.9.9.9", "198.51.100.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := enrich.ClientIP(tc.peer, tc.xff, trusted); got != tc.want {
				t.Fatalf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
}
