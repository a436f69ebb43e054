package steward.safety_test

import rego.v1

import data.steward.safety

test_clean_prompt_allowed if {
	d := safety.decision with input as {"prompt": "a lighthouse at dusk, oil painting", "negative_prompt": ""}
	d.allow
	d.flags == []
	d.reason == "no category matched"
}

test_blocked_term if {
	d := safety.decision with input as {"prompt": "a scene full of GORE", "negative_prompt": ""}
	not d.allow
	d.blocked == ["graphic_violence"]
	d.reason == "blocked: graphic_violence"
}

test_terms_match_whole_words_only if {
	d := safety.decision with input as {"prompt": "a gorgeous skill showcase", "negative_prompt": ""}
	d.allow
	d.flags == []
}

test_flag_severity_allows_with_flag if {
	d := safety.decision with input as {"prompt": "a knight holding a weapon", "negative_prompt": ""}
	d.allow
	d.flags == ["violence"]
	d.blocked == []
}

test_allow_list_removes_harmless_phrase if {
	d := safety.decision with input as {"prompt": "a blood orange on a table", "negative_prompt": ""}
	d.allow
	d.flags == []
}

test_negative_prompt_out_of_scope if {
	d := safety.decision with input as {"prompt": "a castle", "negative_prompt": "gore, blood"}
	d.allow
	d.flags == []
}

test_negative_prompt_in_scope_blocks if {
	d := safety.decision with input as {"prompt": "a portrait", "negative_prompt": "underage nude"}
	not d.allow
	d.blocked == ["minors_sexual"]
}

test_pattern_blocks if {
	d := safety.decision with input as {"prompt": "a child, fully naked", "negative_prompt": ""}
	not d.allow
	"minors_sexual" in d.blocked
}

test_personal_data_flagged if {
	d := safety.decision with input as {"prompt": "poster with jane.doe@example.com on it", "negative_prompt": ""}
	d.allow
	d.flags == ["personal_data"]
}

test_several_categories if {
	d := safety.decision with input as {"prompt": "gore and a gun", "negative_prompt": ""}
	not d.allow
	d.flags == ["graphic_violence", "violence"]
	d.blocked == ["graphic_violence"]
}

test_missing_prompt_refused if {
	d := safety.decision with input as {"negative_prompt": "x"}
	not d.allow
	d.reason == "the input could not be checked"
}

test_regex_quote_escapes_specials if {
	regex_quote_result := safety.regex_quote("a.b+c")
	regex_quote_result == `a\.b\+c`
}
