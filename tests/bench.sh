#!/usr/bin/env bash
# bench.sh BUILD_DIR - checks of the benchmark harness (bench/bench.h) and
# a smoke run of bench_sync (docs/benchmarks.md):
#   - bench_median gives the middle value, or the mean of the two middle
#     values for an even count (median{100, 300} = 200);
#   - bench_ncpus counts the CPUs of the affinity mask the program started
#     with, and bench_pin(i) pins to the i-th of them (taskset -c 1: CPU 1,
#     not CPU 0);
#   - bench_sync at 1 % of its iterations exits 0 with its 4 rows, and exits
#     1 naming the counter when an increment is lost
#     (SHK_BENCH_SYNC_FAULT), and leaves nothing in /dev/shm;
#   - bench/run.sh refuses a sanitizer build dir, and with a program that
#     fails (a fake build dir under $TMP) exits 1, leaves latest.md as it
#     was and keeps the table, with the failure marked, in
#     bench/results/failed-latest.md (restored afterwards if one was there).
set -u
B=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MULT=${SHK_TEST_TIMEOUT_MULTIPLIER:-1}
TMP=$(mktemp -d /tmp/shk-benchtest-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }

cat >"$TMP/probe.c" <<'PROBE'
#include "bench/bench.h"
int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "median") == 0) {
		double a[] = { 300, 100 }, b[] = { 3, 1, 2 },
		       c[] = { 4, 1, 3, 2 };
		printf("%g %g %g\n", bench_median(a, 2), bench_median(b, 3),
		       bench_median(c, 4));
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "pin") == 0) {
		cpu_set_t s;
		int i, n = bench_ncpus();

		if (bench_pin(0) != 0 ||
		    sched_getaffinity(0, sizeof(s), &s) != 0)
			return 1;
		printf("%d", n);
		for (i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &s))
				printf(" %d", i);
		printf("\n");
		return 0;
	}
	return 2;
}
PROBE
if ${CC:-cc} -std=c11 -D_GNU_SOURCE -Wall -I"$ROOT" -I"$ROOT/include" \
	-o "$TMP/probe" "$TMP/probe.c" "$B/lib/libshmkit.a" -lpthread \
	2>"$TMP/cc.err"; then
	r=$("$TMP/probe" median)
	[ "$r" = "200 2 2.5" ] && ok "bench_median: $r" ||
		bad "bench_median of {300,100} {3,1,2} {4,1,3,2}: '$r', expected '200 2 2.5'"
	if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
		r=$(taskset -c 1 "$TMP/probe" pin)
		[ "$r" = "1 1" ] && ok "taskset -c 1: 1 CPU, bench_pin(0) pins to CPU 1" ||
			bad "taskset -c 1: '$r' (CPUs, then the pinned mask), expected '1 1'"
	else
		echo "skipped the pinning check: fewer than 2 CPUs or no taskset"
	fi
else
	cat "$TMP/cc.err"
	bad "the bench.h probe does not compile"
fi

P="$B/bench/bench_sync"
before=$(ls /dev/shm 2>/dev/null | grep -E '^shk-bench-' || true)
out=$(SHK_BENCH_SCALE=0.01 SHK_BENCH_RUNS=2 SHK_BENCH_OUT= \
	timeout -k 5 $((120 * MULT)) "$P" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] && ok "bench_sync exits 0" || bad "bench_sync exited $rc"
n=$(grep -c '^sync ' <<<"$out")
[ "$n" -eq 4 ] && ok "bench_sync: 4 rows" || bad "bench_sync: $n rows, expected 4"
out=$(SHK_BENCH_SCALE=0.001 SHK_BENCH_RUNS=1 SHK_BENCH_OUT= SHK_BENCH_SYNC_FAULT=1 \
	timeout -k 5 $((120 * MULT)) "$P" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'counter is .* after .* increments' <<<"$out"; then
	ok "bench_sync with a lost increment exits 1 and says so"
else
	echo "$out"
	bad "bench_sync with a lost increment: exit $rc"
fi
after=$(ls /dev/shm 2>/dev/null | grep -E '^shk-bench-' || true)
new=$(comm -13 <(echo "$before") <(echo "$after"))
[ -z "$new" ] && ok "nothing left in /dev/shm" || bad "left in /dev/shm: $new"

R="$ROOT/bench/results"
out=$("$ROOT/bench/run.sh" build/asan 2>&1)
rc=$?
[ $rc -eq 2 ] && grep -q 'sanitizer build' <<<"$out" &&
	ok "run.sh refuses build/asan" || bad "run.sh build/asan: exit $rc: $out"
mkdir -p "$TMP/fakeb/bench"
printf '#!/bin/sh\necho "| g | row | 1 x | b | 1 | 1.00 |" >>"$SHK_BENCH_OUT"\nexit 3\n' \
	>"$TMP/fakeb/bench/bench_fails"
chmod +x "$TMP/fakeb/bench/bench_fails"
sum0=$(md5sum <"$R/latest.md" 2>/dev/null)
[ -e "$R/failed-latest.md" ] && cp "$R/failed-latest.md" "$TMP/kept-failed.md"
out=$("$ROOT/bench/run.sh" "$(realpath --relative-to="$ROOT" "$TMP/fakeb")" 2>&1)
rc=$?
sum1=$(md5sum <"$R/latest.md" 2>/dev/null)
if [ $rc -eq 1 ] && [ "$sum0" = "$sum1" ] &&
	grep -q '^| FAILED | bench_fails failed (exit status 3)' "$R/failed-latest.md" &&
	grep -q '^Commit .*, build .*fakeb, SHK_BENCH_SCALE=' "$R/failed-latest.md"; then
	ok "run.sh with a failing program: exit 1, latest.md untouched, failed-latest.md marked"
else
	echo "$out"
	bad "run.sh with a failing program: exit $rc"
fi
rm -f "$R/failed-latest.md"
[ -e "$TMP/kept-failed.md" ] && cp "$TMP/kept-failed.md" "$R/failed-latest.md"
exit $fail
