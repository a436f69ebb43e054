#!/bin/sh
# opa-test.sh runs the opa command's checks on the policies: formatting,
# strict compilation and the Rego tests. The data files are loaded under
# data.steward.<file name>, where the engine puts them; a plain
# `opa test policies/` would load them under data.data instead.
# `go test ./policies/` runs the same checks without the opa command.
set -eu
cd "$(dirname "$0")"
OPA="${OPA:-$(command -v opa || echo "$HOME/go/bin/opa")}"
unformatted="$("$OPA" fmt -l .)"
if [ -n "$unformatted" ]; then
	echo "not opa fmt clean (run: $OPA fmt -w policies/):" >&2
	echo "$unformatted" >&2
	exit 1
fi
"$OPA" check --strict ./*.rego
exec "$OPA" test "$@" ./*.rego \
	steward.taxonomy:data/taxonomy.json \
	steward.roles:data/roles.json \
	steward.consent_map:data/consent_map.json \
	steward.safety:data/safety.json
