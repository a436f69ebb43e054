# Package steward.lib holds the helpers the per-category decisions
# (retention, export, erasure) share: how a key is looked up in the taxonomy
# and why a key has no rule of its own.
package steward.lib

# known(c) is true when c is a key of the taxonomy, a group or a category.
known(c) if data.steward.taxonomy[c]

# group(c) is true when c only groups other categories. Groups carry no
# purpose, retention or erasure rule of their own: no column may be tagged
# with one.
group(c) if data.steward.taxonomy[c].group == true

# storable(c) is true when a column may be tagged with c.
storable(c) if {
	known(c)
	not group(c)
}

# flag names why c has no rule of its own. It is defined only for keys that
# are not storable.
flag(c) := "unknown_category" if not known(c)

flag(c) := "group_category" if group(c)
