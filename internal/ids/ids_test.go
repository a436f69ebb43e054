package ids_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/ids"
)

func TestShapes(t *testing.T) {
	tests := []struct {
		name string
		make func() string
		want *regexp.Regexp
	}{
		{name: "user", make: func() string { return ids.New("u") }, want: regexp.MustCompile(`^u_[a-z2-7]{26}$`)},
		{name: "order", make: func() string { return ids.New("ord") }, want: regexp.MustCompile(`^ord_[a-z2-7]{26}$`)},
		{name: "ordered", make: ids.Ordered, want: regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)},
		{name: "ordered hex", make: ids.OrderedHex, want: regexp.MustCompile(`^[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			for range 1000 {
				id := tt.make()
				if !tt.want.MatchString(id) {
					t.Fatalf("id %q does not match %s", id, tt.want)
				}
				if seen[id] {
					t.Fatalf("id %q made twice", id)
				}
				seen[id] = true
			}
		})
	}
}

func TestOrderedIDsSortByCreation(t *testing.T) {
	tests := []struct {
		name string
		make func() string
	}{
		{name: "canonical", make: ids.Ordered},
		{name: "hex", make: ids.OrderedHex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			made := make([]string, 2000)
			for i := range made {
				made[i] = tt.make()
			}
			if !slices.IsSorted(made) {
				t.Error("ids made one after another do not sort in that order")
			}
			if _, err := uuid.Parse(made[0]); err != nil {
				t.Errorf("%q is not a UUID: %v", made[0], err)
			}
		})
	}
}
