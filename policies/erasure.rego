# Package steward.erasure decides what an erasure request does to data of one
# category in one store (input.store: "sql" or "warehouse"): delete it,
# anonymize it, or keep it for a stated legal reason until a stated end.
package steward.erasure

import data.steward.lib

default decision := {
	"category": "",
	"action": "review",
	"flag": "invalid_input",
	"reason": "input.category must be a category key",
	"until": "",
}

# The warehouse holds copies made for analytics. What the law makes us keep
# (orders, invoices) is kept in the SQL store, so an erasure deletes every
# warehouse row of the subject, whatever its category keeps elsewhere. Data
# that is no one's (system.operations) goes with its row as anywhere else.
decision := {
	"category": input.category,
	"action": "delete",
	"reason": "The warehouse holds analytics copies only; what the law makes us keep is kept in the SQL store.",
	"until": "",
} if {
	lib.storable(input.category)
	input.store == "warehouse"
	data.steward.taxonomy[input.category].personal == true
	data.steward.taxonomy[input.category].erasure.action != "delete"
} else := {
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
