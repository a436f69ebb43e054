package steward.retention_test

import data.steward.retention

rule(c) := d if {
	d := retention.decision with input as {"category": c}
}

test_analytics_events_thirteen_months if {
	d := rule("user.behavior.browsing_history")
	d.known == true
	d.duration == "P13M"
	d.from == "collected_at"
	d.action == "delete"
}

test_account_data_lives_with_account if {
	d := rule("user.contact.email")
	d.duration == "account_lifetime"
	d.from == "account_closed"
	d.action == "delete"
}

test_invoices_ten_years_from_payment if {
	d := rule("user.financial.invoice_id")
	d.duration == "P10Y"
	d.from == "order_paid"
}

test_orders_ten_years_from_payment if {
	d := rule("user.financial.order")
	d.duration == "P10Y"
	d.from == "order_paid"
}

test_ip_address_anonymized_after_thirty_days if {
	d := rule("user.device.ip_address")
	d.duration == "P30D"
	d.action == "anonymize"
}

test_security_logs_short if {
	rule("user.security.abuse_log").duration == "P90D"
	rule("user.security.prompt_safety_result").duration == "P180D"
}

test_sessions_expire_after_inactivity if {
	d := rule("user.account.sign_in_state")
	d.duration == "P90D"
	d.from == "last_activity"
}

test_consent_proof_three_years_after_superseded if {
	d := rule("user.consent.record")
	d.duration == "P3Y"
	d.from == "superseded"
}

test_every_storable_category_has_a_rule if {
	every key, c in data.steward.taxonomy {
		ok(key, c)
	}
}

ok(_, c) if c.group == true

ok(key, c) if {
	not c.group
	d := rule(key)
	d.known == true
	d.duration != ""
	d.from != ""
	d.action in {"delete", "anonymize"}
}

test_unknown_category_flagged if {
	d := rule("user.contact.fax")
	d.known == false
	d.flag == "unknown_category"
	not d.duration
}

test_group_category_flagged if {
	d := rule("user.financial")
	d.known == false
	d.flag == "group_category"
}

test_missing_category_is_invalid_input if {
	d := retention.decision with input as {}
	d.flag == "invalid_input"
	d.known == false
}

test_non_string_category_is_invalid_input if {
	d := retention.decision with input as {"category": 7}
	d.flag == "invalid_input"
}

test_reads_retention_from_data if {
	d := retention.decision with input as {"category": "user.name"}
		with data.steward.taxonomy["user.name"].retention as {"duration": "P1D", "from": "collected_at", "action": "delete"}
	d.duration == "P1D"
}
