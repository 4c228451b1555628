#!/usr/bin/env bash
# readme.sh BUILD_DIR - the README's C example is examples/hello.c verbatim,
# compiles on its own against the built library, and works across two
# processes.
set -eu
B=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; rm -f /dev/shm/hello-shmkit' EXIT
awk '/^```c$/{on=1; next} /^```$/{if(on){exit}} on' "$ROOT/README.md" > "$tmp/readme.c"
if ! diff -u "$ROOT/examples/hello.c" "$tmp/readme.c"; then
	echo "README example differs from examples/hello.c"; exit 1
fi
case "$(basename "$B")" in
	asan) SF="-fsanitize=address,undefined" ;;
	tsan) SF="-fsanitize=thread" ;;
	*) SF="" ;;
esac
cc $SF -std=c11 -Wall -Wextra -Werror -I"$ROOT/include" -o "$tmp/hello" "$tmp/readme.c" "$B/lib/libshmkit.a" -lpthread
"$tmp/hello" write
out=$("$tmp/hello" read)
echo "$out"
grep -q 'point 3: (3, 9)' <<<"$out" || { echo "reader did not see the writer's data"; exit 1; }
# the reader removed the segment: a second read fails cleanly
if "$tmp/hello" read 2>"$tmp/err"; then echo "expected failure"; exit 1; fi
grep -q 'no such segment' "$tmp/err"
echo "README example: OK"
