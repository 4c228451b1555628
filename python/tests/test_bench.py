"""bench/bench_python.py (the binding beside multiprocessing, run by `make
bench`) at a tiny scale: it exits 0, prints every row with a positive
figure, a positive baseline and their ratio, appends the same rows to
SHK_BENCH_OUT in bench_row's Markdown format, and leaves no segment.  A
stream whose producer skips a record number, and a SIGTERM, make it exit
non-zero, and it still removes its segments and its processes."""

import glob
import os
import re
import signal
import subprocess
import sys
import time

from conftest import ROOT

BENCH = os.path.join(ROOT, "bench", "bench_python.py")

SIZES = ("64 B", "4 KiB", "64 KiB")
STREAM = ("Ring write/read", "Ring reserve/peek (zero-copy)",
          "Chan send/recv_bytes", "Chan loan/recv (zero-copy)",
          "Queue push/pop")
STREAM_BASES = ("mp.Pipe send/recv_bytes", "mp.Queue put/get")


def expected_rows():
    """(case, baseline) of every row, in the order the program prints."""
    rows = []
    for size in SIZES:
        for c in STREAM:
            # zero-copy rows touch 8 bytes of the payload: named so, in
            # kmsg/s (docs/benchmarks.md)
            tail = ", payload untouched" if "zero-copy" in c else ""
            for b in STREAM_BASES:
                rows.append(("%s %s%s" % (c, size, tail),
                             "%s %s" % (b, size)))
    for c in ("Ring ping-pong", "Chan ping-pong"):
        for b in ("mp.Pipe ping-pong", "mp.Queue ping-pong"):
            for q in ("p50", "p99"):
                rows.append(("%s 64 B one-way %s" % (c, q),
                             "%s %s" % (b, q)))
    rows.append(("Array.numpy() write+sum 4 MiB",
                 "SharedMemory ndarray 4 MiB"))
    rows.append(("Mutex acquire+release", "mp.Lock acquire+release"))
    rows.append(("Mutex with-block", "mp.Lock with-block"))
    return rows


UNITS = {"kmsg/s", "MB/s", "ns", "ns/op"}
STDOUT_ROW = re.compile(r"^python\s+(.*?)\s+([0-9.]+) (\S+)\s+\| (.*?)\s+"
                        r"([0-9.]+) \| x([0-9.e+-]+)$")
MD_ROW = re.compile(r"^\| python \| (.+?) \| ([0-9.]+) (\S+) \| (.+?) \| "
                    r"([0-9.]+) \| ([0-9.e+-]+) \|$")


def start(tmp_path, *groups, **env):
    e = dict(os.environ, SHK_BENCH_SCALE="0.001", SHK_BENCH_RUNS="1",
             SHK_BENCH_OUT=str(tmp_path / "latest.md"),
             PYTHONPATH=os.path.join(ROOT, "python"))
    e.pop("SHK_BENCH_PY_FAULT", None)
    e.update(env)
    return subprocess.Popen([sys.executable, BENCH] + list(groups), env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def remove_leftovers(p):
    left = glob.glob("/dev/shm/shk-bench-py-%d-*" % p.pid)
    for f in left:
        os.unlink(f)
    return left


def finish(p, timeout=120):  # about 3 s on a quiet 2-CPU VM
    """Waits for the run (and for every process holding its output)."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        left = remove_leftovers(p)
        raise AssertionError("bench_python.py (or a process it left) ran "
                             "over %d s: %s %s; left %s"
                             % (timeout, out, err, left))
    return p.returncode, out, err


def assert_clean(p):
    """No segment of the run left, and no process of its session."""
    left = remove_leftovers(p)
    assert not left, "segments left behind: %s" % left
    for _ in range(20):  # the program reaps what it started
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(p.pid, signal.SIGKILL)
    raise AssertionError("processes of the run left behind")


def check(name, value, unit, base, base_value, ratio):
    v, b, r = float(value), float(base_value), float(ratio)
    assert unit in UNITS, (name, unit)
    assert v > 0 and b > 0 and r > 0, (name, value, base_value, ratio)
    if v >= 1 and b >= 1:  # both printed to 3+ significant digits
        assert abs(r - v / b) <= 0.02 * r + 0.01, (name, v, b, r)


def test_runs_and_reports_every_row(tmp_path):
    p = start(tmp_path)
    rc, out, err = finish(p)
    assert_clean(p)
    assert rc == 0, (rc, out, err)
    want = expected_rows()

    got = [STDOUT_ROW.match(s) for s in out.splitlines()
           if s.startswith("python ")]
    assert all(got), out
    assert [(m.group(1), m.group(4)) for m in got] == want, out
    for m in got:
        check(*m.groups())

    md = (tmp_path / "latest.md").read_text().splitlines()
    rows = [MD_ROW.match(s) for s in md]
    assert all(rows), md
    assert [(m.group(1), m.group(4)) for m in rows] == want, md
    for m in rows:
        check(*m.groups())
    # the stdout table and the Markdown rows carry the same figures
    assert [m.groups() for m in got] == [m.groups() for m in rows]


def test_bad_record_number_fails(tmp_path):
    p = start(tmp_path, "stream", SHK_BENCH_PY_FAULT="Ring write/read")
    rc, out, err = finish(p)
    assert_clean(p)
    assert rc == 1, (rc, out, err)
    assert "Ring write/read 64 B: record" in err, err
    assert "python " not in out  # no figures from a broken group


def test_sigterm_cleans_up(tmp_path):
    # scale 0.5: still running at the signal (at 0.05 the whole run
    # took 0.4 s on an idle CI machine, ended before the SIGTERM at 0.5 s
    # and exited 0)
    p = start(tmp_path, "stream", SHK_BENCH_SCALE="0.5")
    assert p.stdout.readline().startswith("# shmkit"), "no header line"
    time.sleep(0.5)  # inside a run: segments and parties exist
    os.kill(p.pid, signal.SIGTERM)
    rc, out, err = finish(p, 30)
    assert_clean(p)
    assert rc == 1, (rc, out, err)
    assert "stopped (signal %d)" % signal.SIGTERM in err, err
