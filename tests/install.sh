#!/usr/bin/env bash
# install.sh BUILD_DIR - `make install` into two prefixes one after the
# other: each shmkit.pc names its own prefix and a program builds against
# each through pkg-config; `make uninstall` removes every installed file.
# Release build only (install installs build/release).
set -eu
B=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ "$(basename "$B")" = release ] || { echo "install: release build only"; exit 77; }
command -v pkg-config >/dev/null || { echo "install: no pkg-config"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <shmkit.h>\n#include <stdio.h>\nint main(void) { puts(SHK_VERSION_STRING); return shk_strerror(0) == NULL; }\n' >"$tmp/c.c"
for p in A B; do
	make -s -C "$ROOT" install DESTDIR= PREFIX="$tmp/$p" >/dev/null
	got=$(sed -n 's/^prefix=//p' "$tmp/$p/lib/pkgconfig/shmkit.pc")
	[ "$got" = "$tmp/$p" ] || { echo "install PREFIX=$tmp/$p: shmkit.pc says prefix=$got"; exit 1; }
	${CC:-cc} -std=c11 -o "$tmp/c$p" "$tmp/c.c" $(PKG_CONFIG_PATH="$tmp/$p/lib/pkgconfig" pkg-config --cflags --libs shmkit)
	LD_LIBRARY_PATH="$tmp/$p/lib" "$tmp/c$p" >/dev/null
	echo "install PREFIX=.../$p: shmkit.pc prefix=.../$p, a program builds and runs against it"
done
make -s -C "$ROOT" uninstall DESTDIR= PREFIX="$tmp/A" >/dev/null
left=$(find "$tmp/A" -type f -o -type l)
[ -z "$left" ] || { echo "uninstall left:"; echo "$left"; exit 1; }
[ -e "$tmp/B/lib/pkgconfig/shmkit.pc" ] || { echo "uninstall of A removed B's files"; exit 1; }
echo "uninstall PREFIX=.../A: no file left, B untouched"
echo "install: OK"
