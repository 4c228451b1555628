#!/usr/bin/env bash
# examples.sh BUILD_DIR - the examples run to completion: epoll_consumer
# (two rings and a timer in one epoll loop) and chan_pair (a pair channel
# between two processes, with a loan) in every build, and the demo
# (`make demo`) in the release build.
set -eu
B=$1
out=$(timeout 60 "$B/examples/epoll_consumer")
echo "$out" | tail -5
out=$(timeout 60 "$B/examples/chan_pair")
echo "$out" | tail -2
grep -q '^6 of 6 replies matched; B exited 0$' <<<"$out" || { echo "chan_pair: replies missing"; exit 1; }
if [ "$(basename "$B")" = release ]; then
	out=$(timeout 120 "$B/examples/demo")
	echo "$out"
	grep -q ', 0 bad' <<<"$out" || { echo "demo: ring records corrupted"; exit 1; }
	grep -q '(0 bad)' <<<"$out" || { echo "demo: heap blocks corrupted"; exit 1; }
	grep -q 'copies / socket: .*x, 0 bad' <<<"$out" || { echo "demo: channel messages corrupted or missing"; exit 1; }
fi
echo "examples: OK"
