#!/usr/bin/env bash
# examples.sh BUILD_DIR - the examples run to completion: epoll_consumer
# (two rings and a timer in one epoll loop) and chan_pair (a pair channel
# between two processes, with a loan) in every build, epoll_consumer again
# with a producer killed, and the demo
# (`make demo`) in the release build, with its failure paths
# (SHK_DEMO_FAIL), Ctrl-C and two demos at once.
set -eu
B=$1
# "PID STATE PPID PGID" of every process, from /proc (no procps needed)
procs() {
	local f st
	for f in /proc/[0-9]*/stat; do
		{ read -r st <"$f"; } 2>/dev/null || continue
		st=(${st##*) })
		f=${f#/proc/}
		echo "${f%/stat} ${st[0]} ${st[1]} ${st[2]}"
	done
}
out=$(timeout 60 "$B/examples/epoll_consumer")
echo "$out" | tail -5
# a producer killed: epoll_consumer fails within seconds (it checks its
# producers at every timer tick) and removes its segment.  The producers
# hold their END (a test hook), so the one killed is surely still running
# however late the kill comes (a review saw it exit first after a 150 ms
# stall)
EPOLL_CONSUMER_HOLD_END=1 "$B/examples/epoll_consumer" >/dev/null 2>"$B/epoll-kill.err" &
pid=$!
kid=
for ((i = 0; i < 200 && ${#kid} == 0; i++)); do
	kid=$(procs | awk -v p=$pid '$3 == p {print $1; exit}')
	[ -n "$kid" ] || sleep 0.01
done
[ -n "$kid" ] || { echo "epoll_consumer: no producer seen"; kill $pid; exit 1; }
kill -9 "$kid"
st=0
timeout 10 tail --pid=$pid -f /dev/null || { echo "epoll_consumer: still running 10 s after a producer was killed"; kill -9 $pid; exit 1; }
wait $pid || st=$?
[ "$st" = 1 ] || { cat "$B/epoll-kill.err"; echo "epoll_consumer with a producer killed: status $st, not 1"; exit 1; }
! ls /dev/shm | grep -q "^shk-example-epoll-$pid\$" || { echo "epoll_consumer: segment left"; exit 1; }
echo "epoll_consumer with a producer killed: status 1 ($(tail -1 "$B/epoll-kill.err"))"
rm -f "$B/epoll-kill.err"
out=$(timeout 60 "$B/examples/chan_pair")
echo "$out" | tail -2
grep -q '^6 of 6 replies matched; B exited 0$' <<<"$out" || { echo "chan_pair: replies missing"; exit 1; }
# live (not zombie) processes in process group $1; PID 1 here may not reap
# the orphans it inherits
alive() { procs | awk -v g="$1" '$4 == g && $2 != "Z"' | wc -l; }
# gone PGID SECONDS: every process of the group has ended within SECONDS
gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ "$(alive "$1")" = 0 ] && return 0
		sleep 0.1
	done
	echo "processes left in group $1:"; procs | awk -v g="$1" '$4 == g'
	return 1
}
shm_clean() { ! ls /dev/shm 2>/dev/null | grep -q "^$1"; }
if [ "$(basename "$B")" = release ]; then
	out=$(timeout 120 "$B/examples/demo")
	echo "$out"
	grep -q ', 0 bad' <<<"$out" || { echo "demo: ring records corrupted"; exit 1; }
	grep -q 'shared heap : .*, 0 bad$' <<<"$out" || { echo "demo: heap blocks corrupted"; exit 1; }
	grep -q 'copies / socket: .*x, 0 bad' <<<"$out" || { echo "demo: channel messages corrupted or missing"; exit 1; }
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	# a failure in a child, or the demo killed, ends every process in
	# seconds (deadlines, PR_SET_PDEATHSIG); the demo runs in its own
	# session, so its pid is its process group
	for f in heap-producer ping-child heap-parent; do
		SHK_DEMO_FAIL=$f setsid "$B/examples/demo" >"$tmp/out" 2>&1 &
		pid=$!
		t0=$SECONDS
		st=0
		timeout 15 tail --pid=$pid -f /dev/null || { echo "demo ($f): still running after 15 s"; kill -9 -- -$pid; exit 1; }
		wait $pid || st=$?
		[ "$st" != 0 ] || { echo "demo ($f): exit status 0"; exit 1; }
		gone $pid 5 || { kill -9 -- -$pid; echo "demo ($f): processes left"; exit 1; }
		# SIGKILL cannot be caught: the killed demo leaves its segment
		[ "$f" != heap-parent ] || rm -f "/dev/shm/shmkit-demo-$pid" "/dev/shm/shmkit-demo-chan-$pid"
		shm_clean "shmkit-demo-.*$pid\$" || { ls /dev/shm; echo "demo ($f): segment left"; exit 1; }
		echo "demo with SHK_DEMO_FAIL=$f: status $st after $((SECONDS - t0)) s, no process or segment left"
	done
	# Ctrl-C: SIGINT to the process group once the segment exists (a
	# background job of a script starts with SIGINT ignored: undo that)
	env --default-signal=INT setsid "$B/examples/demo" >"$tmp/out" 2>&1 &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		[ -e "/dev/shm/shmkit-demo-$pid" ] && break
		sleep 0.05
	done
	[ -e "/dev/shm/shmkit-demo-$pid" ] || { echo "demo: no segment /dev/shm/shmkit-demo-$pid"; kill -9 -- -$pid; exit 1; }
	sleep 0.3
	kill -INT -- -$pid
	st=0
	wait $pid || st=$?
	[ "$st" = 130 ] || { cat "$tmp/out"; echo "demo after SIGINT: status $st, not 130"; exit 1; }
	gone $pid 5 || { kill -9 -- -$pid; echo "demo after SIGINT: processes left"; exit 1; }
	shm_clean "shmkit-demo-.*$pid\$" || { ls /dev/shm; echo "demo after SIGINT: segment left"; exit 1; }
	echo "demo after SIGINT: status 130, no process or segment left"
	# two demos at once: per-run names, so neither disturbs the other
	timeout 180 "$B/examples/demo" >"$tmp/a" 2>&1 & a=$!
	timeout 180 "$B/examples/demo" >"$tmp/b" 2>&1 & b=$!
	sa=0; sb=0
	wait $a || sa=$?
	wait $b || sb=$?
	[ "$sa" = 0 ] && [ "$sb" = 0 ] || { cat "$tmp/a" "$tmp/b"; echo "two demos at once: status $sa and $sb"; exit 1; }
	# the names each printed (the demos' pids, not timeout's)
	na=$(grep -o 'shmkit-demo-[0-9][0-9]*' "$tmp/a" | head -1)
	nb=$(grep -o 'shmkit-demo-[0-9][0-9]*' "$tmp/b" | head -1)
	[ -n "$na" ] && [ -n "$nb" ] && [ "$na" != "$nb" ] || { echo "two demos at once: names '$na' '$nb'"; exit 1; }
	shm_clean "\($na\|$nb\|shmkit-demo-chan-${na#shmkit-demo-}\|shmkit-demo-chan-${nb#shmkit-demo-}\)\$" ||
		{ ls /dev/shm; echo "two demos at once: segment left"; exit 1; }
	echo "two demos at once: both exited 0, no segment left"
	# a reader that stops reading (make demo | head -1): the demo dies of
	# SIGPIPE at its next line and removes its segments first
	n=$("$B/examples/demo" 2>/dev/null | head -1 | grep -o 'shmkit-demo-[0-9][0-9]*' | head -1)
	[ -n "$n" ] || { echo "demo | head -1: no segment name in the header"; exit 1; }
	for ((i = 0; i < 100; i++)); do
		shm_clean "\($n\|shmkit-demo-chan-${n#shmkit-demo-}\)\$" && break
		sleep 0.1
	done
	shm_clean "\($n\|shmkit-demo-chan-${n#shmkit-demo-}\)\$" ||
		{ ls /dev/shm; echo "demo | head -1: segment left"; exit 1; }
	echo "demo | head -1: no segment left"
fi
echo "examples: OK"
