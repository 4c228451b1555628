#!/usr/bin/env bash
# crashpoints.sh BUILD_DIR - every crash point in src/ (SHK_CRASHPOINT,
# platform.h: a place where a test may SIGKILL the process) is armed by at
# least one test: its whole name appears quoted on a line of tests/ that
# is no comment ("name:N" in an SHK_CRASH value, or "name" in a list a
# test builds the value from).  A
# crash point no test arms marks a kill window whose aftermath nothing
# checks (two were found so on 2026-11-25).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
names=$(grep -rhE '^\s*SHK_CRASHPOINT\("' "$ROOT/src" |
	sed -E 's/.*SHK_CRASHPOINT\("([^"]+)"\).*/\1/' | sort -u)
n=0 bad=0
for c in $names; do
	n=$((n + 1))
	# the whole name, quoted ("name" or "name:N"), outside comments
	if ! grep -rhF -e "\"$c\"" -e "\"$c:" "$ROOT/tests" --include='*.c' \
		--include='*.sh' --include='*.py' |
		grep -qvE '^[[:space:]]*(\*|/\*|//|#)'; then
		echo "crash point $c is armed by no test"
		bad=$((bad + 1))
	fi
done
[ "$n" -ge 40 ] || { echo "expected >= 40 crash points, found $n"; exit 1; }
[ "$bad" -eq 0 ] || exit 1
echo "$n crash points, each armed by a test"
