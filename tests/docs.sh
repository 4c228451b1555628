#!/usr/bin/env bash
# docs.sh BUILD_DIR - generated docs are current: docs/errors.md matches
# what tools/errdoc.c prints from SHK_ERRNO_MAP; and no file holds a
# merge-conflict marker.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -std=c11 -I"$ROOT/include" -o "$tmp/errdoc" "$ROOT/tools/errdoc.c"
"$tmp/errdoc" > "$tmp/errors.md"
diff -u "$ROOT/docs/errors.md" "$tmp/errors.md" || { echo "docs/errors.md is stale: run make docs/errors.md"; exit 1; }
n=$(grep -c '^| `SHK_' "$ROOT/docs/errors.md")
[ "$n" -ge 30 ] || { echo "expected >= 30 codes, found $n"; exit 1; }
echo "docs/errors.md current ($n codes)"
# no merge-conflict markers anywhere in the sources and docs (a merge of
# 2026-11-25 left three in docs/map.md)
if grep -rnE '^(<<<<<<< |>>>>>>> |=======$)' "$ROOT"/docs "$ROOT"/README.md \
	"$ROOT"/include "$ROOT"/src "$ROOT"/tools "$ROOT"/tests "$ROOT"/python \
	"$ROOT"/examples "$ROOT"/bench "$ROOT"/Makefile 2>/dev/null |
	grep -v '/tests/docs.sh:'; then
	echo "merge-conflict markers above"
	exit 1
fi
echo "no merge-conflict markers"
