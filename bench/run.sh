#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - runs every benchmark program and collects the
# table in bench/results/latest.md (figures beside same-run baselines).
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
for b in "$ROOT/$B"/bench/bench_*; do
	[ -x "$b" ] || continue
	echo "== $(basename "$b")"
	"$b" || { echo "bench $(basename "$b") failed"; rc=1; }
done
echo "results: $OUT"
exit $rc
