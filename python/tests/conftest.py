"""Fixtures for the shmkit binding's tests.

Run by tests/run.sh with SHK_LIB (the library under test) and SHK_PY_PEER
(BUILD_DIR/tests/py_peer, the C side).  By hand, from the repository root:
    make && PYTHONPATH=python /usr/bin/python3 -m pytest -q python/tests
Every segment is named shk-test-<pid>-py-<n> and removed on every path.
"""

import glob
import itertools
import os
import selectors
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("SHK_LIB", os.path.join(ROOT, "build", "release", "lib",
                                              "libshmkit.so"))
PEER = os.environ.get("SHK_PY_PEER") or os.path.join(
    ROOT, "build", "release", "tests", "py_peer")

import shmkit  # noqa: E402

_counter = itertools.count()
PREFIX = "shk-test-%d-py-" % os.getpid()


def seg_name():
    return "%s%d" % (PREFIX, next(_counter))


@pytest.fixture(scope="session", autouse=True)
def _no_leftovers():
    yield
    left = glob.glob("/dev/shm/" + PREFIX + "*")
    for f in left:
        os.unlink(f)
    assert not left, "segments left behind: %s" % left


@pytest.fixture
def name():
    """A unique segment name, unlinked after the test whatever happens."""
    n = seg_name()
    yield n
    shmkit.unlink(n, missing_ok=True)


@pytest.fixture
def seg(name):
    """A fresh 1 MiB POSIX segment."""
    s = shmkit.Segment(name, create=True, excl=True, size=1 << 20)
    try:
        yield s
    finally:
        s.close()


class Peer:
    """A running py_peer process whose stdout lines the test follows."""

    def __init__(self, *args):
        self.args = [str(a) for a in args]
        self.p = subprocess.Popen([PEER] + self.args, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True,
                                  bufsize=1)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)
        self.lines = []

    def line(self, timeout=10.0):
        """The next line (stripped); AssertionError on EOF or timeout."""
        if not self.sel.select(timeout):
            raise AssertionError("py_peer %s: no output in %.1f s"
                                 % (self.args, timeout))
        s = self.p.stdout.readline()
        assert s, "py_peer %s ended early (rc %s), saw %s" % (
            self.args, self.p.poll(), self.lines)
        s = s.strip()
        self.lines.append(s)
        assert not s.startswith("error"), "py_peer %s: %s" % (self.args, s)
        return s

    def expect(self, prefix, timeout=10.0):
        s = self.line(timeout)
        assert s.startswith(prefix), "py_peer %s: expected %r, got %r" % (
            self.args, prefix, s)
        return s[len(prefix):].strip()

    def send(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def wait(self, timeout=10.0):
        rest = self.p.stdout.read()
        self.lines += rest.split()
        return self.p.wait(timeout)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.sel.close()
        for f in (self.p.stdout, self.p.stdin):
            try:
                f.close()
            except OSError:
                pass


def _no_peer():
    # tests/run.sh names the peer it built (SHK_PY_PEER): missing there is a
    # build failure, not a reason to skip the cross-language tests
    msg = "py_peer not built (%s): run make" % PEER
    if os.environ.get("SHK_PY_PEER"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture
def peer():
    """peer(*args) starts py_peer; every one started is killed at the end."""
    if not os.access(PEER, os.X_OK):
        _no_peer()
    started = []

    def start(*args):
        p = Peer(*args)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def run_peer(*args, timeout=10.0):
    """Run py_peer to completion; return its stdout lines."""
    if not os.access(PEER, os.X_OK):
        _no_peer()
    r = subprocess.run([PEER] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout.splitlines()


def stamped(i):
    """Record i of py_peer's stamped-record pattern."""
    n = 8 + (i * 37) % 200
    return (i.to_bytes(4, "little") + n.to_bytes(4, "little")
            + bytes((i * 7 + j) & 0xFF for j in range(8, n)))


def fnv(h, data):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


FNV0 = 0xCBF29CE484222325

