# Package steward.retention answers how long data of one category is kept,
# counted from which event, and what happens when the period ends. The rule
# comes straight from the retention entry of the taxonomy data, so changing a
# period is a data change, not a policy change.
package steward.retention

import data.steward.lib

# A missing or non-string category is flagged rather than given a default
# period: the retention runner must never act on a guess.
default decision := {
	"category": "",
	"known": false,
	"flag": "invalid_input",
	"reason": "input.category must be a category key",
}

decision := {
	"category": input.category,
	"known": true,
	"duration": rule.duration,
	"from": rule.from,
	"action": rule.action,
	"reason": sprintf("%s: %s from %s, then %s", [input.category, rule.duration, rule.from, rule.action]),
} if {
	lib.storable(input.category)
	rule := data.steward.taxonomy[input.category].retention
}

# An unknown or group key gets no period at all; the caller reports it as a
# tagging error instead of keeping or deleting data it cannot classify.
decision := {
	"category": input.category,
	"known": false,
	"flag": f,
	"reason": sprintf("%s has no retention rule (%s): fix the column's tag", [input.category, f]),
} if {
	is_string(input.category)
	f := lib.flag(input.category)
}
