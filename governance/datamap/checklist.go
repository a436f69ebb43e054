package datamap

import (
	"fmt"
	"strings"

	"github.com/stewardhq/steward/policies"
)

// CheckChecklist holds the privacy policy to the stores: every item the
// policy names (policies/data/checklist.json) must be kept in some stored
// column of one of its categories, or carry a written reason why nothing is
// stored. It returns one problem per item that is neither.
func CheckChecklist(m *Map, items []policies.ChecklistItem) []Problem {
	stored := map[string]bool{}
	for _, e := range m.Entries {
		stored[e.Category] = true
	}
	var problems []Problem
	for _, it := range items {
		if it.Reason != "" {
			continue
		}
		found := false
		for _, c := range it.Categories {
			if stored[c] {
				found = true
				break
			}
		}
		if found {
			continue
		}
		problems = append(problems, Problem{
			Store:   "privacy policy",
			Table:   fmt.Sprintf("section %d", it.Section),
			Column:  it.Item,
			Rule:    "unstored-item",
			Message: fmt.Sprintf("the policy names it, but no stored column has its categories (%s) and the checklist gives no reason", strings.Join(it.Categories, ", ")),
		})
	}
	return problems
}
