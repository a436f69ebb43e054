package consent

import (
	"reflect"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/module"
)

// TestBrowsingOf holds the identity rule to the stretches it gives: a
// browser's anonymous records belong to whoever next signs in on it.
func TestBrowsingOf(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	link := func(vid, user string, min int) VisitorLink {
		return VisitorLink{VisitorID: vid, UserID: user, LinkedAt: at(min)}
	}
	tests := []struct {
		name  string
		links []VisitorLink
		user  string
		want  []module.Browsing
	}{
		{
			name:  "one browser, one sign-in: everything before it",
			links: []VisitorLink{link("v1", "a", 10)},
			user:  "a",
			want:  []module.Browsing{{VisitorID: "v1", Until: at(10)}},
		},
		{
			name:  "a shared browser: each sign-in claims the time since the one before",
			links: []VisitorLink{link("v1", "a", 10), link("v1", "c", 20), link("v1", "a", 30)},
			user:  "a",
			want:  []module.Browsing{{VisitorID: "v1", Until: at(10)}, {VisitorID: "v1", After: at(20), Until: at(30)}},
		},
		{
			name:  "the other person of a shared browser",
			links: []VisitorLink{link("v1", "a", 10), link("v1", "c", 20), link("v1", "a", 30)},
			user:  "c",
			want:  []module.Browsing{{VisitorID: "v1", After: at(10), Until: at(20)}},
		},
		{
			name:  "sign-ins in a row join into one stretch",
			links: []VisitorLink{link("v1", "a", 10), link("v1", "a", 20)},
			user:  "a",
			want:  []module.Browsing{{VisitorID: "v1", Until: at(20)}},
		},
		{
			name:  "several browsers are apart",
			links: []VisitorLink{link("v1", "a", 10), link("v2", "c", 5), link("v2", "a", 15)},
			user:  "a",
			want:  []module.Browsing{{VisitorID: "v1", Until: at(10)}, {VisitorID: "v2", After: at(5), Until: at(15)}},
		},
		{
			name:  "someone who never signed in on the browser gets nothing of it",
			links: []VisitorLink{link("v1", "a", 10)},
			user:  "c",
			want:  nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := browsingOf(tc.links, tc.user); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("browsingOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}
