package steward.consent_test

import data.steward.consent

gate(purposes, event, gpc) := d if {
	d := consent.decision with input as {"purposes_granted": purposes, "event_type": event, "gpc": gpc}
}

marketing_fields := {
	"user.behavior.attribution.utm",
	"user.behavior.attribution.click_id",
	"user.unique_id",
}

test_no_consent_drops_page_views if {
	d := gate([], "page_view", false)
	d.store == "drop"
	d.transform == {}
	"user.behavior.browsing_history" in d.strip
	contains(d.reason, "needs analytics consent")
}

test_necessary_alone_drops_page_views if gate(["necessary"], "page_view", false).store == "drop"

test_functional_alone_drops_page_views if gate(["functional"], "page_view", false).store == "drop"

test_marketing_without_analytics_drops_page_views if gate(["marketing"], "page_view", false).store == "drop"

test_every_analytics_event_type_needs_consent if {
	every event in ["page_view", "feature_interaction", "pricing_view", "signup", "purchase", "performance"] {
		gate([], event, false).store == "drop"
	}
}

test_analytics_only_is_minimized if {
	d := gate(["analytics"], "page_view", false)
	d.store == "minimized"
	every f in marketing_fields {
		f in d.strip
	}
	d.transform["user.behavior.browsing_history.referrer"] == "host_only"
	d.transform["user.device.ip_address"] == "truncate"
	not "user.unique_id.analytics_id" in d.strip
	not "user.device.session_id" in d.strip
	d.purposes == ["analytics", "necessary"]
}

test_analytics_and_marketing_is_full if {
	d := gate(["analytics", "marketing"], "page_view", false)
	d.store == "full"
	d.strip == []
	not d.transform["user.behavior.browsing_history.referrer"]
	d.transform["user.device.ip_address"] == "truncate"
	d.transform["user.behavior.browsing_history"] == "path_only"
}

test_gpc_strips_marketing_fields if {
	d := gate(["analytics", "marketing"], "page_view", true)
	d.store == "minimized"
	every f in marketing_fields {
		f in d.strip
	}
	d.purposes == ["analytics", "necessary"]
	contains(d.reason, "Global Privacy Control")
}

test_gpc_with_explicit_marketing_opt_in_is_full if {
	d := consent.decision with input as {
		"purposes_granted": ["analytics", "marketing"],
		"event_type": "page_view",
		"gpc": true,
		"explicit_marketing": true,
	}
	d.store == "full"
	"marketing" in d.purposes
}

test_gpc_without_analytics_still_drops if gate(["marketing"], "page_view", true).store == "drop"

test_gpc_without_marketing_says_nothing_about_gpc if {
	d := gate(["analytics"], "page_view", true)
	d.store == "minimized"
	not contains(d.reason, "Global Privacy Control")
}

test_error_events_are_necessary_and_minimized if {
	d := gate([], "error", false)
	d.store == "minimized"
	not "user.behavior.diagnostics.error_log" in d.strip
	not "user.behavior.timestamp" in d.strip
	"user.unique_id.analytics_id" in d.strip
	"user.device.ip_address" in d.strip
	"user.device.session_id" in d.strip
	d.transform["user.device.browser"] == "family_only"
}

test_error_events_with_analytics_keep_full_browser if {
	d := gate(["analytics"], "error", false)
	not d.transform["user.device.browser"]
	not "user.device.browser" in d.strip
}

test_unknown_event_type_dropped if {
	d := gate(["analytics", "marketing"], "mouse_move", false)
	d.store == "drop"
	contains(d.reason, "unknown event type")
}

test_missing_event_type_dropped if {
	d := consent.decision with input as {"purposes_granted": ["analytics"]}
	d.store == "drop"
}

test_unknown_purposes_ignored if {
	d := gate(["analytics", "sale_of_data"], "page_view", false)
	d.purposes == ["analytics", "necessary"]
}

test_missing_purposes_means_none if {
	d := consent.decision with input as {"event_type": "page_view"}
	d.store == "drop"
}

test_event_gate_is_data if {
	d := gate([], "page_view", false) with data.steward.consent_map.event_types.page_view as {"requires": "necessary"}
	d.store == "minimized"
}

test_field_tiers_are_data if {
	d := gate(["analytics"], "page_view", false) with data.steward.consent_map.fields["user.behavior.attribution.utm"] as {"tiers": [{"requires": "analytics", "transform": "none"}]}
	not "user.behavior.attribution.utm" in d.strip
}

test_gpc_blocks_are_data if {
	d := gate(["analytics", "marketing"], "page_view", true) with data.steward.consent_map.gpc_blocks as []
	d.store == "full"
}

test_missing_event_type_explained if {
	d := consent.decision with input as {"purposes_granted": ["analytics"]}
	d.reason == "missing or unknown event type: dropped"
}

test_empty_event_type_dropped if gate(["analytics"], "", false).store == "drop"
