#!/usr/bin/env bash
# tests/run.sh BUILD_DIR - runs every test suite and prints, as its last
# line, "N passed, N failed, N skipped" (cases across all suites).
#   C suites:      BUILD_DIR/tests/test_*  (harness.h cases)
#   shell suites:  tests/*.sh except this file (one case each; exit 77 skip)
#   Python:        python/tests via /usr/bin/python3 -m pytest (if present;
#                  not for sanitizer builds, see below)
# Each suite runs under `timeout`, scaled by SHK_TEST_TIMEOUT_MULTIPLIER.
# Fails when a suite leaves shmkit test segments in /dev/shm or SysV.
# SHK_TEST_WRAPPER="cmd args": each C suite runs as `cmd args SUITE`
# (`make valgrind` sets it to valgrind); then only the C suites run: the
# shell suites and pytest run the CLI, examples and library unwrapped, so
# they would repeat the plain run.
set -u
B=${1:-build/release}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
MULT=${SHK_TEST_TIMEOUT_MULTIPLIER:-1}
SUITE_TIMEOUT=$((300 * MULT))
export SHK_BUILD="$ROOT/$B"
read -ra WRAP <<<"${SHK_TEST_WRAPPER:-}"
passed=0 failed=0 skipped=0
failed_names=()

# Test segments are named shk-test-<pid>-...; one is a leftover when the
# process that made it is gone and it was not there before this run (so
# segments of other, concurrent runs on the same machine are not blamed).
before=$(ls /dev/shm 2>/dev/null | grep -E '^shk-test-' || true)
leftovers() {
	local f pid
	for f in $(ls /dev/shm 2>/dev/null | grep -E '^shk-test-[0-9]+-' || true); do
		grep -qxF "$f" <<<"$before" && continue
		pid=${f#shk-test-}; pid=${pid%%-*}
		kill -0 "$pid" 2>/dev/null && continue
		echo "$f"
	done
}

# SysV segments: one is a leftover when it appeared during this run, nobody
# is attached, and its creator is gone.
sysv_before=$(awk 'NR>1{print $2}' /proc/sysvipc/shm 2>/dev/null)
sysv_leftovers() {
	awk 'NR>1{print $2, $7, $5}' /proc/sysvipc/shm 2>/dev/null |
	while read -r id nattch cpid; do
		grep -qx "$id" <<<"$sysv_before" && continue
		[ "$nattch" = 0 ] || continue
		kill -0 "$cpid" 2>/dev/null && continue
		echo "$id"
	done
}

add_counts() { # parse "# cases: P passed, F failed, S skipped"
	local line=$1
	local p f s
	p=$(sed -n 's/.*# cases: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\1/p' <<<"$line")
	f=$(sed -n 's/.*# cases: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\2/p' <<<"$line")
	s=$(sed -n 's/.*# cases: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\3/p' <<<"$line")
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
}

for t in "$ROOT/$B"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	echo "== $name"
	out=$(timeout -k 5 "$SUITE_TIMEOUT" ${WRAP[@]+"${WRAP[@]}"} "$t" 2>&1)
	rc=$?
	echo "$out" | grep -vE '^# cases:' | sed 's/^/   /'
	summary=$(grep -E '^# cases:' <<<"$out" | tail -1)
	if [ -n "$summary" ]; then
		add_counts "$summary"
	fi
	if [ $rc -ne 0 ] && [ -z "$summary" -o $rc -ge 124 ]; then
		failed=$((failed + 1)); failed_names+=("$name (exit $rc)")
	elif [ $rc -ne 0 ]; then
		failed_names+=("$name")
	fi
	left=$(leftovers)
	if [ -n "$left" ]; then
		echo "   FAIL: $name left segments in /dev/shm: $left"
		failed=$((failed + 1)); failed_names+=("$name (leftovers)")
		for f in $left; do rm -f "/dev/shm/$f"; done
	fi
	left=$(sysv_leftovers)
	if [ -n "$left" ]; then
		echo "   FAIL: $name left SysV segments (shmid): $left"
		failed=$((failed + 1)); failed_names+=("$name (SysV leftovers)")
		for id in $left; do ipcrm -m "$id" 2>/dev/null; done
		sysv_before=$(awk 'NR>1{print $2}' /proc/sysvipc/shm 2>/dev/null)
	fi
done

if [ ${#WRAP[@]} -gt 0 ]; then
	echo "== shell suites and pytest: not run under SHK_TEST_WRAPPER=${WRAP[0]}"
fi
for t in "$HERE"/*.sh; do
	[ ${#WRAP[@]} -gt 0 ] && break
	[ "$(basename "$t")" = run.sh ] && continue
	name=$(basename "$t")
	echo "== $name"
	timeout -k 5 "$SUITE_TIMEOUT" bash "$t" "$ROOT/$B" 2>&1 | sed 's/^/   /'
	rc=${PIPESTATUS[0]}
	if [ $rc -eq 0 ]; then passed=$((passed + 1)); echo "   PASS $name"
	elif [ $rc -eq 77 ]; then skipped=$((skipped + 1)); echo "   SKIP $name"
	else failed=$((failed + 1)); failed_names+=("$name (exit $rc)"); echo "   FAIL $name (exit $rc)"; fi
	left=$(leftovers)
	if [ -n "$left" ]; then
		echo "   FAIL: $name left segments in /dev/shm: $left"
		failed=$((failed + 1)); failed_names+=("$name (leftovers)")
		for f in $left; do rm -f "/dev/shm/$f"; done
	fi
	left=$(sysv_leftovers)
	if [ -n "$left" ]; then
		echo "   FAIL: $name left SysV segments (shmid): $left"
		failed=$((failed + 1)); failed_names+=("$name (SysV leftovers)")
		for id in $left; do ipcrm -m "$id" 2>/dev/null; done
		sysv_before=$(awk 'NR>1{print $2}' /proc/sysvipc/shm 2>/dev/null)
	fi
done

# pytest loads BUILD_DIR's libshmkit.so into /usr/bin/python3 and runs
# BUILD_DIR/tests/py_peer (SHK_PY_PEER) as the C side.  Not for a sanitizer
# build: an ASan/TSan library cannot be dlopen()ed into an interpreter that
# was not started with the runtime preloaded, and LD_PRELOADing it into
# python reports the interpreter's own leaks and allocator use, so pytest
# runs for the plain (release) build only and counts as one skip here.
san_lib() { readelf -d "$ROOT/$B/lib/libshmkit.so" 2>/dev/null | grep -qE 'NEEDED.*lib(asan|tsan|ubsan)'; }
if [ ${#WRAP[@]} -eq 0 ] && [ -d "$ROOT/python/tests" ] && san_lib; then
	echo "== pytest python/tests: skipped (sanitizer build; run it on build/release)"
	skipped=$((skipped + 1))
elif [ ${#WRAP[@]} -eq 0 ] && [ -d "$ROOT/python/tests" ] && [ -x /usr/bin/python3 ] && \
   /usr/bin/python3 -c 'import pytest, numpy' 2>/dev/null; then
	echo "== pytest python/tests"
	out=$(cd "$ROOT" && SHK_LIB="$ROOT/$B/lib/libshmkit.so" PYTHONPATH="$ROOT/python" \
		SHK_PY_PEER="$ROOT/$B/tests/py_peer" \
		timeout -k 5 "$SUITE_TIMEOUT" /usr/bin/python3 -m pytest -q -p no:cacheprovider python/tests 2>&1)
	rc=$?
	echo "$out" | sed 's/^/   /'
	line=$(grep -E '[0-9]+ (passed|failed)' <<<"$out" | tail -1)
	p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+'); f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
	s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+'); e=$(grep -oE '[0-9]+ error' <<<"$line" | grep -oE '[0-9]+')
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0})); skipped=$((skipped + ${s:-0}))
	if [ $rc -ne 0 ] && [ $rc -ne 5 ] && [ -z "$f$e" ]; then failed=$((failed + 1)); fi
	[ $rc -ne 0 ] && [ $rc -ne 5 ] && failed_names+=("pytest (exit $rc)")
fi

# SysV segments created by tests carry the key range 0x40000000.. and are
# removed by the tests; report any left owned by us with nattch 0 from a test.
if [ ${#failed_names[@]} -gt 0 ]; then
	echo "failed suites: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ ${#failed_names[@]} -eq 0 ]
