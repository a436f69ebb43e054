# Package steward.export decides whether data of one category goes into the
# package a subject receives for an access request, and says why when it
# does not.
package steward.export

import data.steward.lib

default decision := {
	"category": "",
	"include": false,
	"flag": "invalid_input",
	"reason": "input.category must be a category key",
}

decision := {
	"category": input.category,
	"include": rule.include,
	"reason": reason(rule),
} if {
	lib.storable(input.category)
	rule := data.steward.taxonomy[input.category].export
}

# Unknown keys are left out and flagged: exporting an unclassified column
# could hand out another person's data or a security secret.
decision := {
	"category": input.category,
	"include": false,
	"flag": f,
	"reason": sprintf("%s is not exported (%s): fix the column's tag", [input.category, f]),
} if {
	is_string(input.category)
	f := lib.flag(input.category)
}

reason(rule) := "personal data of the subject (GDPR Art. 15, 20)" if rule.include == true

reason(rule) := rule.withheld_reason if rule.include == false
