#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - runs every benchmark program, then
# bench/bench_python.py (the Python binding; when /usr/bin/python3 has NumPy),
# and collects the table in bench/results/latest.md (figures beside same-run
# baselines).
#   SHK_BENCH_SCALE=0.01  scales iteration counts (CI smoke)
#   SHK_BENCH_RUNS=N      measured runs per figure (median; default 5)
#   SHK_BENCH_TIMEOUT=S   per-program limit in seconds (default 600)
# Exits non-zero when a program fails, times out, or leaves a shk-bench-*
# segment in /dev/shm or file in /tmp.
set -u
B=${1:-build/release}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/bench/results/latest.md"
mkdir -p "$ROOT/bench/results"
{
	echo "# shmkit benchmark results"
	echo
	echo "Measured by \`make bench\` on $(date -u +%Y-%m-%d), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)."
	echo "Every figure stands beside a baseline measured in the same run; ratio = value / baseline."
	echo
	echo "| group | case | value | baseline | baseline value | ratio |"
	echo "| --- | --- | --- | --- | --- | --- |"
} > "$OUT"
export SHK_BENCH_OUT="$OUT"
rc=0
# bench_boost is built only where Boost.Interprocess's headers are
# (libboost-dev; `make bench-deps` installs it when run as root)
if [ ! -x "$ROOT/$B/bench/bench_boost" ]; then
	why="not built: no Boost.Interprocess headers (Debian libboost-dev; make bench-deps installs it)"
	echo "== bench_boost: skipped: $why"
	echo "| boost | shmkit beside Boost.Interprocess | skipped: $why | - | - | - |" >> "$OUT"
fi
for b in "$ROOT/$B"/bench/bench_*; do
	[ -x "$b" ] || continue
	echo "== $(basename "$b")"
	t0=$(date +%s)
	timeout -k 5 "${SHK_BENCH_TIMEOUT:-600}" "$b" ||
		{ echo "bench $(basename "$b") failed"; rc=1; }
	echo "   ($(( $(date +%s) - t0 )) s)"
done
# bench_python.py: the Python binding beside multiprocessing, with Debian's
# interpreter and NumPy (as python/tests); a skip is a note, not a failure.
# Not for a sanitizer build: its library cannot be loaded into python.
py_skip() {
	echo "   skipped: $1"
	echo "| python | bench_python.py | skipped: $1 | - | - | - |" >> "$OUT"
}
echo "== bench_python.py"
if [ ! -x /usr/bin/python3 ]; then
	py_skip "no /usr/bin/python3"
elif ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
	py_skip "/usr/bin/python3 cannot import numpy (Debian: python3-numpy)"
elif [ ! -e "$ROOT/$B/lib/libshmkit.so" ]; then
	py_skip "no $B/lib/libshmkit.so"
elif readelf -d "$ROOT/$B/lib/libshmkit.so" 2>/dev/null | grep -qE 'NEEDED.*lib(asan|tsan|ubsan)'; then
	py_skip "$B is a sanitizer build"
else
	t0=$(date +%s)
	SHK_LIB="$ROOT/$B/lib/libshmkit.so" PYTHONPATH="$ROOT/python" \
		timeout -k 5 "${SHK_BENCH_TIMEOUT:-600}" /usr/bin/python3 "$ROOT/bench/bench_python.py" ||
		{ echo "bench bench_python.py failed"; rc=1; }
	echo "   ($(( $(date +%s) - t0 )) s)"
fi
left=$(ls /dev/shm 2>/dev/null | grep -E '^shk-bench-' || true)
if [ -n "$left" ]; then
	echo "leftover segments in /dev/shm: $left"
	rc=1
fi
# bench_peers' ZeroMQ ipc:// socket files and RouDi config/log
left=$(ls /tmp 2>/dev/null | grep -E '^shk-bench-' || true)
if [ -n "$left" ]; then
	echo "leftover files in /tmp: $left"
	rc=1
fi
echo "results: $OUT"
exit $rc
