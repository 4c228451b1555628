#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - runs every benchmark program, then
# bench/bench_python.py (the Python binding; when /usr/bin/python3 has NumPy),
# and collects the table in bench/results/latest.md (figures beside same-run
# baselines).
#   SHK_BENCH_SCALE=0.01  scales iteration counts (CI smoke)
#   SHK_BENCH_RUNS=N      measured runs per figure (median; default 5)
#   SHK_BENCH_TIMEOUT=S   per-program limit in seconds (default 600)
#   SHK_BENCH_ALLOW_SAN=1 runs a sanitizer build (build/asan, build/tsan, or
#                         any build whose library links a sanitizer), which
#                         is refused otherwise: its figures are not shmkit's
# The table is written to a temporary file and moved to latest.md only when
# every program succeeded; otherwise it is kept as
# bench/results/failed-latest.md (each failed program marked in it) and
# latest.md is left as it was.
# Exits non-zero when a program fails, times out, or leaves a shk-bench-*
# segment in /dev/shm or file in /tmp.
set -u
B=${1:-build/release}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FINAL="$ROOT/bench/results/latest.md"
FAILED="$ROOT/bench/results/failed-latest.md"
mkdir -p "$ROOT/bench/results"
case "$B" in
*asan* | *tsan*) san=1 ;;
*) san=0 ;;
esac
if readelf -d "$ROOT/$B/lib/libshmkit.so" 2>/dev/null | grep -qE 'NEEDED.*lib(asan|tsan|ubsan)'; then
	san=1
fi
if [ "$san" = 1 ] && [ "${SHK_BENCH_ALLOW_SAN:-0}" != 1 ]; then
	echo "bench/run.sh: $B is a sanitizer build: its figures would not be shmkit's;" >&2
	echo "  use build/release, or set SHK_BENCH_ALLOW_SAN=1 to run it anyway" >&2
	exit 2
fi
OUT=$(mktemp "$ROOT/bench/results/.latest.XXXXXX.md") || exit 1
trap 'rm -f "$OUT"' EXIT
commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
{
	echo "# shmkit benchmark results"
	echo
	echo "Measured by \`make bench\` on $(date -u +%Y-%m-%d), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)."
	echo "Commit $commit, build $B$([ "$san" = 1 ] && echo ' (a sanitizer build: figures not representative)'), SHK_BENCH_SCALE=${SHK_BENCH_SCALE:-1}, SHK_BENCH_RUNS=${SHK_BENCH_RUNS:-5}."
	echo "Every figure stands beside a baseline measured in the same run; ratio = value / baseline."
	echo
	echo "| group | case | value | baseline | baseline value | ratio |"
	echo "| --- | --- | --- | --- | --- | --- |"
} > "$OUT"
# failed NAME: marks a failed program in the table (its rows, if any,
# precede the mark and are not to be trusted)
failed() {
	echo "bench $1 failed"
	echo "| FAILED | $1 failed ($2): rows of $1 above are not to be trusted | - | - | - | - |" >> "$OUT"
	rc=1
}
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
	timeout -k 5 "${SHK_BENCH_TIMEOUT:-600}" "$b"
	st=$?
	[ $st -eq 0 ] || failed "$(basename "$b")" "exit status $st"
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
elif [ "$san" = 1 ]; then
	py_skip "$B is a sanitizer build"
else
	t0=$(date +%s)
	SHK_LIB="$ROOT/$B/lib/libshmkit.so" PYTHONPATH="$ROOT/python" \
		timeout -k 5 "${SHK_BENCH_TIMEOUT:-600}" /usr/bin/python3 "$ROOT/bench/bench_python.py"
	st=$?
	[ $st -eq 0 ] || failed bench_python.py "exit status $st"
	echo "   ($(( $(date +%s) - t0 )) s)"
fi
left=$(ls /dev/shm 2>/dev/null | grep -E '^shk-bench-' || true)
if [ -n "$left" ]; then
	echo "leftover segments in /dev/shm: $left"
	failed "a program" "left $left in /dev/shm"
fi
# bench_peers' ZeroMQ ipc:// socket files and RouDi config/log
left=$(ls /tmp 2>/dev/null | grep -E '^shk-bench-' || true)
if [ -n "$left" ]; then
	echo "leftover files in /tmp: $left"
	failed "a program" "left $left in /tmp"
fi
if [ $rc -eq 0 ]; then
	mv "$OUT" "$FINAL"
	rm -f "$FAILED"
	echo "results: $FINAL"
else
	echo "| FAILED | this run failed: see the FAILED rows and the log | - | - | - | - |" >> "$OUT"
	mv "$OUT" "$FAILED"
	echo "results: $FAILED (a program failed; $FINAL left as it was)"
fi
exit $rc
