package steward.access_test

import data.steward.access

check(role, action, cats, owner) := d if {
	d := access.decision with input as {
		"role": role,
		"action": action,
		"categories": cats,
		"subject_owner": owner,
	}
}

# user: own rows only, everything exported, a few edits and deletes.

test_user_reads_own_email if {
	d := check("user", "read", ["user.contact.email", "user.name"], true)
	d.allow == true
	d.redact == []
	d.own_only == true
}

test_user_cannot_read_another_users_row if {
	d := check("user", "read", ["user.contact.email"], false)
	d.allow == false
	d.redact == ["user.contact.email"]
	d.permitted == []
	contains(d.reason, "own rows")
}

test_user_missing_owner_flag_means_not_owner if {
	d := access.decision with input as {"role": "user", "action": "read", "category": "user.name"}
	d.allow == false
}

test_user_never_reads_withheld_categories if {
	d := check("user", "read", ["user.name", "user.authorization.credentials", "user.security.abuse_log"], true)
	d.allow == true
	d.permitted == ["user.name"]
	d.redact == ["user.authorization.credentials", "user.security.abuse_log"]
}

test_user_exports_prompts_and_orders if {
	d := check("user", "export", ["user.content.prompt", "user.financial.order", "user.behavior.attribution.utm"], true)
	d.allow == true
	d.redact == []
}

test_user_updates_profile if {
	d := check("user", "update", ["user.name", "user.account.settings.language", "user.account.avatar"], true)
	d.allow == true
}

test_user_cannot_update_email if {
	d := check("user", "update", ["user.contact.email"], true)
	d.allow == false
}

test_user_cannot_update_credit_balance if {
	d := check("user", "update", ["user.name", "user.financial.credit_balance"], true)
	d.allow == false
	d.redact == ["user.financial.credit_balance"]
	contains(d.reason, "write is refused")
}

test_user_deletes_own_generation if {
	d := check("user", "delete", ["user.content.prompt", "user.content.generated_media", "user.content.generation_settings.seed"], true)
	d.allow == true
}

test_user_revokes_own_session if check("user", "delete", ["user.authorization.credentials"], true).allow == true

test_user_cannot_delete_orders if check("user", "delete", ["user.financial.order"], true).allow == false

test_user_cannot_audit if check("user", "audit", ["user.name"], true).allow == false

# support: account basics, tickets, generation metadata; no prompts, media
# or financial details other than the subscription status.

test_support_reads_account_basics if {
	d := check(
		"support", "read", [
			"user.unique_id",
			"user.name",
			"user.contact.email",
			"user.account.settings.language",
			"user.account.created_at",
			"user.financial.subscription_status",
		],
		false,
	)
	d.allow == true
	d.redact == []
	d.own_only == false
}

test_support_reads_tickets_by_prefix if {
	d := check("support", "list", ["user.support.question", "user.support.attachment", "user.support.status"], false)
	d.redact == []
}

test_support_reads_generation_metadata if {
	d := check(
		"support", "read", [
			"user.content.generation_settings.model",
			"user.content.generation_task_id",
			"user.content.generation_failure_reason",
			"user.content.generation_history",
		],
		false,
	)
	d.redact == []
}

test_support_never_sees_prompts_or_media if {
	d := check(
		"support", "read", [
			"user.content.generation_failure_reason",
			"user.content.prompt",
			"user.content.negative_prompt",
			"user.content.generated_media",
			"user.content.upload",
			"user.content.reference_url",
		],
		false,
	)
	d.allow == true
	d.permitted == ["user.content.generation_failure_reason"]
	count(d.redact) == 5
}

test_support_never_sees_financial_details if {
	d := check(
		"support", "read", [
			"user.financial.subscription_status",
			"user.financial.credit_balance",
			"user.financial.order",
			"user.financial.price",
			"user.financial.customer_id",
			"user.financial.invoice_id",
		],
		false,
	)
	d.permitted == ["user.financial.subscription_status"]
	count(d.redact) == 5
}

test_support_denied_identifiers_below_granted_prefix if {
	d := check("support", "read", ["user.unique_id", "user.unique_id.provider_subject", "user.unique_id.analytics_id"], false)
	d.permitted == ["user.unique_id"]
}

test_support_never_sees_credentials if check("support", "read", ["user.authorization.credentials"], false).allow == false

test_support_answers_ticket if check("support", "update", ["user.support.conversation", "user.support.status"], false).allow == true

test_support_cannot_edit_account if check("support", "update", ["user.contact.email"], false).allow == false

test_support_cannot_delete if check("support", "delete", ["user.support.question"], false).allow == false

test_support_cannot_export if check("support", "export", ["user.name"], false).allow == false

# analyst: consented analytics, order fields for revenue, no identifiers.

test_analyst_reads_analytics if {
	d := check(
		"analyst", "read", [
			"user.behavior.browsing_history",
			"user.behavior.browsing_history.referrer",
			"user.behavior.attribution.utm",
			"user.behavior.attribution.landing_page",
			"user.behavior.pricing_exposure",
			"user.device.browser",
		],
		false,
	)
	d.redact == []
}

test_analyst_reads_revenue_fields if check("analyst", "list", ["user.financial.price", "user.financial.currency", "user.financial.product"], false).redact == []

test_analyst_never_sees_identifiers if {
	d := check(
		"analyst", "read", [
			"user.behavior.browsing_history",
			"user.contact.email",
			"user.name",
			"user.device.ip_address",
			"user.unique_id",
			"user.unique_id.analytics_id",
			"user.device.session_id",
			"user.behavior.attribution.click_id",
		],
		false,
	)
	d.permitted == ["user.behavior.browsing_history"]
	count(d.redact) == 7
}

test_analyst_never_sees_orders if check("analyst", "read", ["user.financial.order"], false).allow == false

test_analyst_cannot_write if check("analyst", "update", ["user.behavior.browsing_history"], false).allow == false

# Attribution reports show groups of any size only to roles that may read
# the account and visitor ids the reports are built on
# (analytics/attribution.RawCategories); every other role sees small
# groups folded.

test_attribution_raw_reports_need_both_identifiers if {
	every role in ["dpo", "admin"] {
		d := check(role, "read", ["user.unique_id", "user.unique_id.analytics_id"], false)
		d.allow == true
		d.redact == []
	}
	every role in ["user", "support", "analyst"] {
		count(check(role, "read", ["user.unique_id", "user.unique_id.analytics_id"], false).redact) > 0
	}
}

# dpo: everything read-only, plus audit.

test_dpo_reads_everything if {
	every key, _ in data.steward.taxonomy {
		check("dpo", "read", [key], false).allow == true
	}
}

test_dpo_audits_staff_log if check("dpo", "audit", ["user.security.admin_audit_log", "system.operations"], false).allow == true

test_dpo_exports if check("dpo", "export", ["user.authorization.credentials"], false).allow == true

test_dpo_cannot_update if check("dpo", "update", ["user.name"], false).allow == false

test_dpo_cannot_delete if check("dpo", "delete", ["user.behavior.browsing_history"], false).allow == false

# admin: everything.

test_admin_may_do_everything if {
	every key, _ in data.steward.taxonomy {
		every action in access.actions {
			check("admin", action, [key], false).allow == true
		}
	}
}

# edge cases.

test_unknown_role_denied if {
	d := check("intern", "read", ["user.name"], true)
	d.allow == false
	d.redact == ["user.name"]
	contains(d.reason, "unknown role")
}

test_missing_role_denied if {
	d := access.decision with input as {"action": "read", "category": "user.name"}
	d.allow == false
}

test_unknown_action_denied if {
	d := check("admin", "drop", ["user.name"], false)
	d.allow == false
	contains(d.reason, "unknown action")
}

test_no_category_denied if {
	d := check("admin", "read", [], false)
	d.allow == false
	d.reason == "no category requested"
}

test_unknown_category_redacted_and_named if {
	d := check("admin", "read", ["user.name", "user.contact.fax"], false)
	d.allow == true
	d.redact == ["user.contact.fax"]
	contains(d.reason, "user.contact.fax")
}

test_unknown_category_blocks_a_write if check("admin", "delete", ["user.name", "user.contact.fax"], false).allow == false

test_single_category_input if {
	d := access.decision with input as {"role": "support", "action": "read", "category": "user.support.status"}
	d.allow == true
	d.permitted == ["user.support.status"]
}

test_duplicate_categories_counted_once if {
	d := check("support", "read", ["user.name", "user.name"], false)
	d.permitted == ["user.name"]
}

test_group_key_needs_a_grant_on_the_group if {
	check("support", "read", ["user.support"], false).allow == true
	check("support", "read", ["user.financial"], false).allow == false
}

test_prefix_does_not_match_partial_segment if {
	d := check("support", "read", ["user.supporter"], false)
	d.allow == false
}

test_roles_are_data if {
	d := check("auditor", "read", ["user.name"], false) with data.steward.roles.auditor as {
		"own_only": false,
		"grants": [{"actions": ["read"], "categories": ["user.name"]}],
	}
	d.allow == true
}

test_role_change_takes_effect if {
	d := check("support", "read", ["user.content.prompt"], false) with data.steward.roles.support.grants as [{"actions": ["read"], "categories": ["user.content"]}]
	d.allow == true
}

test_exported_only_follows_taxonomy if {
	d := check("user", "read", ["user.name"], true) with data.steward.taxonomy["user.name"].export as {"include": false, "withheld_reason": "test"}
	d.allow == false
}

test_missing_role_explained if {
	d := access.decision with input as {"action": "read", "category": "user.name"}
	contains(d.reason, "unknown role")
}

test_prefix_covers_deep_descendants if check("support", "read", ["user.content.generation_settings.seed"], false).allow == true

test_grant_does_not_cover_parent if check("support", "read", ["user.content"], false).allow == false

test_category_input_ignored_when_categories_given if {
	d := access.decision with input as {
		"role": "support",
		"action": "read",
		"category": "user.content.prompt",
		"categories": ["user.name"],
	}
	d.redact == []
	d.permitted == ["user.name"]
}

test_non_string_category_redacted if {
	d := check("admin", "read", ["user.name", 42], false)
	d.permitted == ["user.name"]
	d.redact == [42]
}

# Technical columns carry no personal data: every role reads them beside
# the categories it may see, so ids and states are never redacted.

test_every_role_reads_technical_columns if {
	every role in ["user", "support", "analyst", "dpo", "admin"] {
		d := check(role, "read", ["system.operations"], true)
		d.allow == true
		d.redact == []
	}
}

test_analyst_reads_technical_columns_of_others if {
	d := check("analyst", "list", ["system.operations", "user.behavior.browsing_history"], false)
	d.allow == true
	d.redact == []
}

# Staff reach their own rows as users do.

test_support_reads_and_edits_own_profile if {
	d := check("support", "read", ["user.account.avatar", "user.authorization.role", "user.name"], true)
	d.allow == true
	d.redact == []
	u := check("support", "update", ["user.name", "user.account.settings.language"], true)
	u.allow == true
}

test_analyst_sees_own_email_but_not_others if {
	own := check("analyst", "read", ["user.contact.email"], true)
	own.redact == []
	other := check("analyst", "read", ["user.contact.email"], false)
	other.redact == ["user.contact.email"]
}

test_own_rows_do_not_grant_role_changes if {
	d := check("support", "update", ["user.authorization.role"], true)
	d.allow == false
}

test_own_rows_still_withhold_unexported_categories if {
	d := check("analyst", "read", ["user.authorization.credentials"], true)
	d.redact == ["user.authorization.credentials"]
}

test_technical_columns_alone_do_not_open_a_row if {
	d := check("analyst", "read", ["system.operations", "user.content.prompt", "user.content.generated_media"], false)
	d.allow == false
	d.permitted == ["system.operations"]
}

test_non_personal_rows_are_readable if {
	d := check("analyst", "read", ["system.operations"], false)
	d.allow == true
}
