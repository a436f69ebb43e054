# Package steward.safety checks the text of a generation request before it
# runs. Blocked terms and patterns per category, each with a severity, and
# an allow-list of harmless phrases are data (data.steward.safety), so the
# lists change without a new policy.
#
# A category matches when one of its terms appears as whole words, or one of
# its patterns matches, in a text of its scope (prompt, negative_prompt).
# Matching is on the lower-cased text with every allow-listed phrase removed
# first, so "a blood orange" does not match "blood". A category of severity
# "block" refuses the request; "flag" lets it through and records the flag.
package steward.safety

import rego.v1

default decision := {
	"allow": false,
	"flags": [],
	"blocked": [],
	"reason": "the input could not be checked",
}

# The allow-listed phrases, each replaced by a space.
allowed_phrases := {phrase: " " | some phrase in data.steward.safety.allow}

# texts holds the normalized texts by scope.
texts[scope] := clean(input[scope]) if {
	some scope in {"prompt", "negative_prompt"}
	is_string(input[scope])
}

clean(s) := strings.replace_n(allowed_phrases, lower(s))

# term_matches(term, text) holds when term appears in text as whole words.
term_matches(term, text) if {
	regex.match(sprintf(`(^|[^a-z0-9])%s($|[^a-z0-9])`, [regex_quote(lower(term))]), text)
}

# regex_quote escapes the characters RE2 treats as special.
regex_quote(s) := concat("", [quoted |
	some ch in split(s, "")
	quoted := quote_char(ch)
])

quote_char(ch) := concat("", [`\`, ch]) if {
	contains(`\.+*?()|[]{}^$`, ch)
}

quote_char(ch) := ch if {
	not contains(`\.+*?()|[]{}^$`, ch)
}

# matched is the set of categories found in the input.
matched contains name if {
	some name, cat in data.steward.safety.categories
	some scope in cat.scope
	text := texts[scope]
	some term in cat.terms
	term_matches(term, text)
}

matched contains name if {
	some name, cat in data.steward.safety.categories
	some scope in cat.scope
	text := texts[scope]
	some pattern in cat.patterns
	regex.match(pattern, text)
}

blocked := sort([name | some name in matched; data.steward.safety.categories[name].severity == "block"])

flags := sort([name | some name in matched])

decision := {
	"allow": count(blocked) == 0,
	"flags": flags,
	"blocked": blocked,
	"reason": reason,
} if {
	is_string(input.prompt)
}

reason := "no category matched" if {
	count(matched) == 0
}

reason := sprintf("allowed with flags: %s", [concat(", ", flags)]) if {
	count(matched) > 0
	count(blocked) == 0
}

reason := sprintf("blocked: %s", [concat(", ", blocked)]) if {
	count(blocked) > 0
}
