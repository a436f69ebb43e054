# Package steward.erasure decides what an erasure request does to data of one
# category: delete it, anonymize it, or keep it for a stated legal reason
# until a stated end.
package steward.erasure

import data.steward.lib

default decision := {
	"category": "",
	"action": "review",
	"flag": "invalid_input",
	"reason": "input.category must be a category key",
	"until": "",
}

decision := {
	"category": input.category,
	"action": rule.action,
	"reason": rule.reason,
	"until": object.get(rule, "until", ""),
} if {
	lib.storable(input.category)
	rule := data.steward.taxonomy[input.category].erasure
}

# Unknown keys go to review: deleting might destroy records the law makes us
# keep, keeping might hold data we have no reason for.
decision := {
	"category": input.category,
	"action": "review",
	"flag": f,
	"reason": sprintf("%s has no erasure rule (%s): fix the column's tag", [input.category, f]),
	"until": "",
} if {
	is_string(input.category)
	f := lib.flag(input.category)
}
