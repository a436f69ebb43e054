package steward.export_test

import data.steward.export

decide(c) := d if {
	d := export.decision with input as {"category": c}
}

test_email_exported if {
	d := decide("user.contact.email")
	d.include == true
	d.reason != ""
}

test_prompts_and_media_exported if {
	decide("user.content.prompt").include == true
	decide("user.content.generated_media").include == true
	decide("user.content.upload").include == true
}

test_orders_exported if decide("user.financial.order").include == true

test_analytics_events_exported if {
	decide("user.behavior.attribution.utm").include == true
	decide("user.unique_id.analytics_id").include == true
}

test_consent_record_and_privacy_requests_exported if {
	decide("user.consent.record").include == true
	decide("user.privacy_request").include == true
}

test_hashed_credentials_withheld_with_reason if {
	d := decide("user.authorization.credentials")
	d.include == false
	contains(d.reason, "weaken the security")
}

test_abuse_log_withheld if decide("user.security.abuse_log").include == false

test_storage_path_withheld if decide("user.content.upload.storage_path").include == false

test_technical_columns_withheld if decide("system.operations").include == false

test_every_withheld_category_has_a_reason if {
	every key, c in data.steward.taxonomy {
		reasoned(key, c)
	}
}

reasoned(_, c) if c.group == true

reasoned(key, c) if {
	not c.group
	d := decide(key)
	d.include == true
}

reasoned(key, c) if {
	not c.group
	d := decide(key)
	d.include == false
	count(d.reason) > 10
}

test_unknown_category_not_exported if {
	d := decide("user.financial.credit_card")
	d.include == false
	d.flag == "unknown_category"
}

test_group_not_exported if {
	d := decide("user.content")
	d.include == false
	d.flag == "group_category"
}

test_invalid_input if {
	d := export.decision with input as {"category": ["user.name"]}
	d.flag == "invalid_input"
}
