package steward.erasure_test

import data.steward.erasure

decide(c) := d if {
	d := erasure.decision with input as {"category": c}
}

test_email_deleted if {
	d := decide("user.contact.email")
	d.action == "delete"
	d.until == ""
}

test_prompts_deleted if decide("user.content.prompt").action == "delete"

test_orders_kept_for_tax_law if {
	d := decide("user.financial.order")
	d.action == "keep"
	contains(d.reason, "tax and commercial record-keeping law")
	d.until == "P10Y from order_paid"
}

test_invoices_kept_for_tax_law if {
	d := decide("user.financial.invoice_id")
	d.action == "keep"
	d.until == "P10Y from order_paid"
}

test_payment_customer_id_kept if decide("user.financial.customer_id").action == "keep"

test_checkout_session_deleted if decide("user.financial.checkout_session").action == "delete"

test_consent_proof_anonymized_and_kept if {
	d := decide("user.consent.record")
	d.action == "anonymize"
	d.until != ""
}

# The current choice goes; the proof log keeps the evidence of each choice.
test_consent_state_deleted if decide("user.consent.state").action == "delete"

test_user_id_anonymized if decide("user.unique_id").action == "anonymize"

test_security_logs_kept_until_retention_ends if {
	d := decide("user.security.abuse_log")
	d.action == "keep"
	d.until == "P90D from collected_at"
}

test_analytics_events_deleted if decide("user.behavior.browsing_history").action == "delete"

# The warehouse's copy of an order is deleted; the order itself is kept in
# the SQL store.
test_warehouse_copies_deleted if {
	w := erasure.decision with input as {"category": "user.financial.order", "store": "warehouse"}
	w.action == "delete"
	w.until == ""
	s := erasure.decision with input as {"category": "user.financial.order", "store": "sql"}
	s.action == "keep"
}

test_warehouse_operations_follow_their_row if {
	d := erasure.decision with input as {"category": "system.operations", "store": "warehouse"}
	d.action == decide("system.operations").action
}

test_warehouse_unknown_key_reviewed if {
	d := erasure.decision with input as {"category": "user.nope", "store": "warehouse"}
	d.action == "review"
}

test_every_kept_category_has_reason_and_end if {
	every key, c in data.steward.taxonomy {
		justified(key, c)
	}
}

justified(_, c) if c.group == true

justified(key, c) if {
	not c.group
	decide(key).action in {"delete", "anonymize"}
}

justified(key, c) if {
	not c.group
	d := decide(key)
	d.action == "keep"
	d.reason != ""
	d.until != ""
}

test_unknown_category_goes_to_review if {
	d := decide("user.nope")
	d.action == "review"
	d.flag == "unknown_category"
}

test_group_goes_to_review if {
	d := decide("user.security")
	d.action == "review"
	d.flag == "group_category"
}

test_invalid_input if {
	d := erasure.decision with input as {"categories": ["user.name"]}
	d.action == "review"
	d.flag == "invalid_input"
}
