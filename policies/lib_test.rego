package steward.lib_test

import data.steward.lib

test_known_category if lib.known("user.contact.email")

test_known_group if lib.known("user.financial")

test_unknown_key if not lib.known("user.contact.fax")

test_group_is_not_storable if not lib.storable("user.content")

test_leaf_is_storable if lib.storable("user.content.prompt")

test_category_with_children_is_storable if lib.storable("user.content.upload")

test_flag_unknown if lib.flag("nope") == "unknown_category"

test_flag_group if lib.flag("user.behavior") == "group_category"

test_no_flag_for_storable if not lib.flag("user.name")
