#!/usr/bin/env bash
# bench_boost.sh BUILD_DIR - a smoke run of bench_boost (shmkit beside
# Boost.Interprocess, docs/benchmarks.md) at 1 % of its iterations and one
# round: every case runs and checks what it moved (the program exits
# non-zero otherwise), every row is printed, shmkit reports the SIGKILLed
# mutex holder, and nothing is left in /dev/shm.  Skipped (exit 77) where
# bench_boost was not built: the Makefile builds it only when Boost's
# headers are installed (libboost-dev, a `make bench` dependency that
# `make test` and CI do not install).
set -u
B=$1
P="$B/bench/bench_boost"
if [ ! -x "$P" ]; then
	echo "skipped: $P not built (no Boost.Interprocess headers; Debian libboost-dev)"
	exit 77
fi
MULT=${SHK_TEST_TIMEOUT_MULTIPLIER:-1}
before=$(ls /dev/shm 2>/dev/null | grep -E '^shk-bench-' || true)
out=$(SHK_BENCH_SCALE=0.01 SHK_BENCH_RUNS=1 SHK_BENCH_OUT= \
	timeout -k 5 $((120 * MULT)) "$P" 2>&1)
rc=$?
grep -v '^   spread' <<<"$out"
fail=0
if [ $rc -ne 0 ]; then
	echo "FAIL: bench_boost exited $rc"
	fail=1
fi
# 4 queue throughputs, 2 queue and 2 semaphore latencies, 2 mutex and
# 4 heap rows, 2 robustness rows
n=$(grep -c '^boost ' <<<"$out")
if [ "$n" -ne 16 ]; then
	echo "FAIL: $n rows, expected 16"
	fail=1
fi
n=$(grep -c '^boost  *robust: .*: SHK_EOWNERDEAD .*| interprocess_mutex::timed_lock: ' <<<"$out")
if [ "$n" -ne 2 ]; then
	echo "FAIL: $n robustness rows with SHK_EOWNERDEAD, expected 2"
	fail=1
fi
# names are shk-bench-PID-...; new ones of a process that is gone are ours
for f in $(ls /dev/shm 2>/dev/null | grep -E '^shk-bench-[0-9]+-' || true); do
	grep -qxF "$f" <<<"$before" && continue
	pid=${f#shk-bench-}
	pid=${pid%%-*}
	kill -0 "$pid" 2>/dev/null && continue
	echo "FAIL: left in /dev/shm: $f"
	rm -f "/dev/shm/$f"
	fail=1
done
[ $fail -eq 0 ] && echo "bench_boost: OK"
exit $fail
