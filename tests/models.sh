#!/usr/bin/env bash
# models.sh BUILD_DIR - model-checks the Promela models in tests/models/
# with Spin (ALGORITHMS.md §11).  Each model states how it is checked in
# header lines:
#   // pan: FLAGS        flags for ./pan (e.g. "-a -f" for its ltl claim);
#                        the check must report "errors: 0"
#   // expect-error: -DX a variant (spin -DX) that must report an error: the
#                        model is able to see the bug it guards against
#   // also-pass: -DX    a variant that must pass like the model itself
# Exit 77 (skip) when spin is not installed (make deps installs it).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v spin >/dev/null || { echo "spin not installed: skipped"; exit 77; }
# The models do not depend on the build: check them once, in the release
# run, not again under each sanitizer.
case "${1:-build/release}" in
*/release | release) ;;
*) echo "models are checked in the release run: skipped"; exit 77 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
check() { # check MODEL DEFINE EXPECT(0|err)
	local m=$1 def=$2 want=$3 flags out
	flags=$(sed -n 's|^// pan: *||p' "$m" | head -1)
	rm -rf "$tmp/w" && mkdir "$tmp/w"
	cp "$m" "$tmp/w/model.pml"
	(cd "$tmp/w" && spin $def -a model.pml >/dev/null &&
		cc -O2 -w -DVECTORSZ=4096 -DCOLLAPSE -o pan pan.c) ||
		{ echo "$(basename "$m") $def: spin/cc failed"; return 1; }
	out=$(cd "$tmp/w" && ./pan -m100000 $flags 2>&1) || true
	if [ "$want" = 0 ]; then
		grep -q "errors: 0" <<<"$out" || {
			echo "$(basename "$m"): expected no error"; echo "$out" | tail -30
			return 1; }
		echo "  $(basename "$m")${def:+ $def}: ok ($(grep -o '[0-9.e+]* states, stored' <<<"$out" | head -1))"
	else
		grep -q "errors: [1-9]" <<<"$out" || {
			echo "$(basename "$m") $def: the bug variant passed"; echo "$out" | tail -30
			return 1; }
		echo "  $(basename "$m") $def: error found, as expected"
	fi
}
for m in "$ROOT"/tests/models/*.pml; do
	[ -e "$m" ] || continue
	check "$m" "" 0
	n=$((n + 1))
	for d in $(sed -n 's|^// expect-error: *||p' "$m"); do
		check "$m" "$d" err
	done
	for d in $(sed -n 's|^// also-pass: *||p' "$m"); do
		check "$m" "$d" 0
	done
done
[ "$n" -gt 0 ] || { echo "no models in tests/models: skipped"; exit 77; }
echo "$n models checked"
