package web

import "testing"

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"/privacy/delete", "/privacy/delete"},
		{"/privacy/requests/pr_1?token=1.abc", "/privacy/requests/pr_1?token=1.abc"},
		{"/", "/"},
		{"", ""},
		{"privacy", ""},
		{"//evil.example/x", ""},
		{"/\\evil.example", ""},
		{"https://evil.example/", ""},
		{"javascript:alert(1)", ""},
		{"/a\r\nSet-Cookie: x=1", ""},
		{"/a\tb", ""},
		{"/" + string(make([]byte, 600)), ""},
	} {
		if got := LocalPath(tc.in); got != tc.want {
			t.Errorf("LocalPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
