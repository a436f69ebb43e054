package emailaddr_test

import (
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/emailaddr"
)

func TestValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "plain", in: "ann@example.com", want: true},
		{name: "dots, plus and a sub-domain", in: "ann.b+tag@mail.example.co", want: true},
		{name: "longest accepted", in: strings.Repeat("a", 242) + "@example.com", want: true},
		{name: "too long", in: strings.Repeat("a", 250) + "@example.com", want: false},
		{name: "display name", in: "Ann <ann@example.com>", want: false},
		{name: "angle brackets", in: "<ann@example.com>", want: false},
		{name: "surrounding space", in: " ann@example.com ", want: false},
		{name: "domain without a dot", in: "ann@localhost", want: false},
		{name: "domain ending in a dot", in: "ann@example.", want: false},
		{name: "no at sign", in: "ann", want: false},
		{name: "words", in: "ann at example", want: false},
		{name: "no local part", in: "@example.com", want: false},
		{name: "two at signs", in: "ann@b@example.com", want: false},
		{name: "empty", in: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := emailaddr.Valid(tt.in); got != tt.want {
				t.Errorf("Valid(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
