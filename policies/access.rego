# Package steward.access decides whether a role may perform an action on data
# of the requested categories, and which of those categories it must not see.
# Roles, their grants and the taxonomy are data (data.steward.roles,
# data.steward.taxonomy); this file holds only the logic that reads them.
package steward.access

actions := {"read", "list", "update", "delete", "export", "audit"}

# A write changes or removes whole rows, so it is allowed only when every
# requested category is permitted. A read can return the row with the
# forbidden columns redacted.
write_actions := {"update", "delete"}

role := data.steward.roles[input.role]

# role_name and action_name keep the reason defined when the input lacks
# them.
role_name := object.get(input, "role", "")

action_name := object.get(input, "action", "")

# requested is the set of category keys the caller asks about: either
# input.categories (an array) or input.category (one key).
requested := {c | some c in input.categories} if {
	is_array(input.categories)
} else := {input.category} if {
	is_string(input.category)
} else := set()

default own_only := false

own_only if role.own_only == true

# owner_ok holds when the role may reach the row at all: roles limited to
# their own rows need the caller to own it.
owner_ok if {
	role
	not own_only
}

owner_ok if {
	own_only
	input.subject_owner == true
}

# prefixes maps each requested key to the keys that cover it: the key itself
# and every ancestor ("user", "user.content", "user.content.prompt"). The
# sets below are complete values computed once per evaluation; set algebra
# on them replaces a function call per grant and category, which keeps one
# evaluation cheap.
prefixes := {c: ps |
	some c in requested
	is_string(c)
	ps := {substring(c, 0, i) | some i in indexof_n(c, ".")} | {c}
}

# Grant prefixes for the requested action, split by whether the grant is
# limited to exported categories.
grant_prefixes := {p |
	some g in role.grants
	not g.exported_only
	input.action in g.actions
	some p in g.categories
}

exported_grant_prefixes := {p |
	some g in role.grants
	g.exported_only == true
	input.action in g.actions
	some p in g.categories
}

deny_prefixes := {p | some p in object.get(role, "deny", [])}

deny_identifiability := {v | some v in object.get(role, "deny_identifiability", [])}

# A grant marked exported_only reaches only categories an access request
# would export, so a user never reads, through the API, what the export
# withholds (token hashes, abuse signals, staff audit logs).
granted := {c |
	some c, ps in prefixes
	count(ps & grant_prefixes) > 0
} | {c |
	some c, ps in prefixes
	count(ps & exported_grant_prefixes) > 0
	data.steward.taxonomy[c].export.include == true
}

denied := {c |
	some c, ps in prefixes
	count(ps & deny_prefixes) > 0
} | {c |
	some c in granted
	data.steward.taxonomy[c].identifiability in deny_identifiability
}

role_permitted := {c |
	some c in granted
	data.steward.taxonomy[c]
	not c in denied
} if {
	owner_ok
	input.action in actions
} else := set()

# Everyone reaches their own rows as the user role does, whatever their
# staff role: a support agent reads and edits their own profile, an analyst
# sees their own email. The staff role's deny rules are about other
# people's data and do not apply here. An unknown role reaches nothing.
own_permitted := {c |
	role
	input.subject_owner == true
	some c, ps in prefixes
	some g in data.steward.roles.user.grants
	input.action in g.actions
	count(ps & {p | some p in g.categories}) > 0
	own_export_ok(g, c)
	data.steward.taxonomy[c]
}

own_export_ok(g, _) if not g.exported_only

own_export_ok(g, c) if {
	g.exported_only == true
	data.steward.taxonomy[c].export.include == true
}

permitted := role_permitted | own_permitted

redact := requested - permitted

read_like if {
	input.action in actions
	not input.action in write_actions
}

default allow := false

# Technical columns (system.operations) are readable by every role, so
# they alone never open a row: a read needs some personal category
# permitted, unless nothing personal was asked for. Otherwise a role that
# may see none of a row's personal data would still learn that the row
# exists and when it was written.
personal_requested := {c | some c in requested; data.steward.taxonomy[c].personal == true}

personal_permitted := permitted & personal_requested

allow if {
	read_like
	count(personal_permitted) > 0
}

allow if {
	read_like
	count(permitted) > 0
	count(personal_requested) == 0
}

allow if {
	input.action in write_actions
	count(permitted) > 0
	count(redact) == 0
}

unknown := requested - {c | some c in requested; data.steward.taxonomy[c]}

# unknown_note names the requested keys that are not in the taxonomy: they
# are always redacted, and the caller most likely has a tagging error.
default unknown_note := ""

unknown_note := sprintf(" (not in the taxonomy: %s)", [concat(", ", sort(unknown))]) if count(unknown) > 0

reason := sprintf("unknown role %q", [role_name]) if {
	not role
} else := sprintf("unknown action %q", [action_name]) if {
	not input.action in actions
} else := "no category requested" if {
	count(requested) == 0
} else := sprintf("role %s may only reach its own rows", [role_name]) if {
	not owner_ok
} else := sprintf("role %s may %s every requested category", [role_name, action_name]) if {
	allow
	count(redact) == 0
} else := sprintf("role %s may %s %d of %d requested categories; the rest are redacted%s", [role_name, action_name, count(permitted), count(requested), unknown_note]) if {
	allow
} else := sprintf("role %s may not %s every requested category, so the write is refused%s", [role_name, action_name, unknown_note]) if {
	input.action in write_actions
	count(permitted) > 0
} else := sprintf("role %s may not %s any requested category%s", [role_name, action_name, unknown_note])

decision := {
	"allow": allow,
	"redact": sort(redact),
	"permitted": sort(permitted),
	"own_only": own_only,
	"reason": reason,
}
