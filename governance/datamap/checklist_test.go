package datamap

import (
	"testing"

	"github.com/stewardhq/steward/policies"
)

func TestCheckChecklist(t *testing.T) {
	m := &Map{Entries: []Entry{
		{Field: Field{Store: "sql", Table: "users", Column: "email", Category: "user.contact.email"}},
		{Field: Field{Store: "warehouse", Table: "events", Column: "path", Category: "user.behavior.browsing_history"}},
	}}
	tests := []struct {
		name string
		item policies.ChecklistItem
		want bool // a problem expected
	}{
		{"stored in sql", policies.ChecklistItem{Section: 1, Item: "email address", Categories: []string{"user.contact.email"}}, false},
		{"stored under one of several categories", policies.ChecklistItem{Section: 5, Item: "paths visited", Categories: []string{"user.behavior.attribution.landing_page", "user.behavior.browsing_history"}}, false},
		{"not stored, no reason", policies.ChecklistItem{Section: 2, Item: "prompts", Categories: []string{"user.content.prompt"}}, true},
		{"not stored, with a reason", policies.ChecklistItem{Section: 4, Item: "full card numbers", Reason: "held by the payment provider"}, false},
		{"no category and no reason", policies.ChecklistItem{Section: 8, Item: "pixels"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := CheckChecklist(m, []policies.ChecklistItem{tt.item})
			if got := len(problems) > 0; got != tt.want {
				t.Fatalf("problems = %v, want problem: %v", problems, tt.want)
			}
			if tt.want && problems[0].Column != tt.item.Item {
				t.Fatalf("problem %v does not name the item", problems[0])
			}
		})
	}
}
