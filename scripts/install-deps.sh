#!/usr/bin/env bash
# install-deps.sh installs, on a Debian machine, the system packages Steward's
# tests run against: PostgreSQL server binaries, the Debian ClickHouse
# server (used for the warehouse adapter's contract tests), npm (fetches the
# embedded ClickHouse engine) and Chromium (browser tests of the consent
# banner and the tracker). With --check it
# only reports what is missing and how to get it.
set -euo pipefail

check_only=false
[[ "${1:-}" == "--check" ]] && check_only=true

missing=()
have_pg() {
	command -v initdb >/dev/null 2>&1 && return 0
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
have_pg || missing+=(postgresql)
{ command -v clickhouse-server >/dev/null 2>&1 || [[ -x /usr/sbin/clickhouse-server ]] || [[ -x /usr/bin/clickhouse ]]; } || missing+=(clickhouse-server)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The consent banner and tracker are tested in a real headless browser.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if ((${#missing[@]} == 0)); then
	exit 0
fi
if $check_only; then
	echo "missing test dependencies: ${missing[*]}" >&2
	echo "install them with: sudo make deps   (Debian: apt-get install ${missing[*]})" >&2
	exit 1
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "installing ${missing[*]} needs root: sudo $0" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The packages' own service start is not wanted: tests start throwaway
# servers themselves. policy-rc.d keeps apt from starting them.
apt-get install -y -qq --no-install-recommends "${missing[@]}"
