# Package steward.consent gates analytics events by the visitor's consent.
# Given the purposes the visitor granted, the event type and the Global
# Privacy Control signal, it decides whether the event is dropped, stored
# minimized or stored in full, which field categories are stripped and how
# the kept ones are reduced. Which purpose each event type and each field
# needs is data (data.steward.consent_map), so that table can change without a
# policy change.
package steward.consent

cfg := data.steward.consent_map

granted contains p if {
	some p in input.purposes_granted
	cfg.purposes[p]
}

granted contains p if {
	some p, spec in cfg.purposes
	spec.always_granted == true
}

explicit_marketing if input.explicit_marketing == true

# GPC is an opt-out of sale, sharing and targeted advertising. It overrides a
# marketing grant that did not come from an explicit choice made while the
# signal was present, for example a default set by region.
gpc_applies if {
	input.gpc == true
	not explicit_marketing
}

gpc_removed contains p if {
	gpc_applies
	some p in cfg.gpc_blocks
	p in granted
}

effective := granted - gpc_removed

event := cfg.event_types[input.event_type]

stored if event.requires in effective

# tier_index maps each field to the index of its first tier whose purpose
# is in effect. Tiers are ordered from the richest form of the field to the
# poorest; a field with no tier in effect is missing here and stripped. A
# dropped event keeps no field at all.
tier_index := {f: idx[0] |
	some f, spec in cfg.fields
	idx := [i | some i, t in spec.tiers; t.requires in effective]
	count(idx) > 0
} if {
	stored
} else := {}

strip := object.keys(cfg.fields) - object.keys(tier_index)

transform := {f: t.transform |
	some f, i in tier_index
	t := cfg.fields[f].tiers[i]
	t.transform != "none"
}

# reduced holds the fields kept in a poorer form than their richest tier.
# Only those count as minimization: the richest tier of the IP address is
# already truncated, so truncation alone leaves an event "full".
reduced := {f | some f, i in tier_index; i > 0}

store := "drop" if {
	not stored
} else := "minimized" if {
	count(strip) + count(reduced) > 0
} else := "full"

event_name := object.get(input, "event_type", "")

gpc_note := sprintf("; Global Privacy Control signal without an explicit opt-in: %v not in effect", [sort(gpc_removed)]) if {
	count(gpc_removed) > 0
} else := ""

reason := "missing or unknown event type: dropped" if {
	event_name == ""
} else := sprintf("unknown event type %q: dropped", [event_name]) if {
	not event
} else := sprintf("event type %s needs %s consent, which is not in effect: dropped", [event_name, event.requires]) if {
	not stored
} else := sprintf("stored minimized: %d field categories stripped, %d reduced%s", [count(strip), count(reduced), gpc_note]) if {
	store == "minimized"
} else := concat("", ["every field allowed by the purposes in effect: stored full", gpc_note])

decision := {
	"store": store,
	"strip": sort(strip),
	"transform": transform,
	"purposes": sort(effective),
	"reason": reason,
}
