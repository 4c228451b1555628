"""Errors: the exception map covers the header's SHK_ERRNO_MAP exactly, and
bad input raises exceptions instead of crashing."""

import fractions
import os
import pickle
import re

import numpy as np
import pytest

import shmkit
from shmkit import errors
from conftest import ROOT


def header_codes():
    text = open(os.path.join(ROOT, "include", "shmkit.h")).read()
    block = text[text.index("#define SHK_ERRNO_MAP(X)"):]
    block = block[:block.index("enum shk_error")]
    found = re.findall(r"X\((E[A-Z]+),\s*(-\d+),\s*\"([^\"]*)\"\)", block)
    assert len(found) >= 30
    return [("SHK_" + n, int(v), m) for n, v, m in found]


def test_every_header_code_has_an_exception():
    codes = header_codes()
    for name, value, msg in codes:
        assert errors.CODES[name] == value
        cls = errors.EXCEPTIONS[value]
        assert cls is not shmkit.ShkError and issubclass(cls, shmkit.ShkError)
        assert cls.code == value and cls.name == name
        e = errors.exception_for(value)
        assert type(e) is cls and e.message == msg and e.code == value
        assert getattr(shmkit, name) == value          # shmkit.SHK_ETYPE
        assert getattr(shmkit, name[4:]) is cls        # shmkit.ETYPE
    # and nothing more: the library knows no code the header lacks
    assert sorted(errors.CODES.values()) == sorted(v for _, v, _ in codes)


def test_named_exceptions_and_builtin_bases():
    assert issubclass(shmkit.Timeout, TimeoutError)
    assert shmkit.Timeout.code == -110
    assert shmkit.Again is shmkit.WouldBlock
    assert issubclass(shmkit.WouldBlock, BlockingIOError)
    assert issubclass(shmkit.NotFound, FileNotFoundError)
    assert issubclass(shmkit.Exists, FileExistsError)
    assert issubclass(shmkit.TypeMismatch, TypeError)
    assert shmkit.TypeMismatch.code == shmkit.SHK_ETYPE == -1003
    for n in ("Corrupt", "PeerDead", "MsgSize", "OwnerDead", "BadSegment"):
        assert issubclass(getattr(shmkit, n), shmkit.ShkError)
    e = shmkit.errors.exception_for(-110, "ring read")
    assert str(e) == "ring read: SHK_ETIMEDOUT: timed out"
    assert e.errno == 110 and e.name == "SHK_ETIMEDOUT"
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is shmkit.Timeout and e2.context == "ring read"
    u = shmkit.errors.exception_for(-999)
    assert type(u) is shmkit.ShkError and u.name == "SHK_UNKNOWN"


def test_bad_names_raise(name):
    with pytest.raises(shmkit.InvalidArgument):
        shmkit.Segment("bad/name", create=True)
    with pytest.raises(shmkit.InvalidArgument):
        shmkit.Segment("nul\0inside", create=True)
    with pytest.raises(shmkit.NameTooLong):
        shmkit.Segment("x" * 300, create=True)
    with pytest.raises(shmkit.NotFound) as ei:
        shmkit.Segment(name)
    assert isinstance(ei.value, FileNotFoundError)
    with pytest.raises(TypeError):
        shmkit.Segment(12345)
    with pytest.raises(ValueError):
        shmkit.Segment(name, excl=True)           # excl without create
    with pytest.raises(ValueError):
        shmkit.Segment(name, create=True, backend="nope")
    with pytest.raises(shmkit.NotFound):
        shmkit.unlink(name)
    shmkit.unlink(name, missing_ok=True)


def test_exists_and_bad_object_names(seg, name):
    with pytest.raises(shmkit.Exists):
        shmkit.Segment(name, create=True, excl=True)
    with pytest.raises(shmkit.InvalidArgument):
        seg.ring("", "producer", create=True)
    with pytest.raises((shmkit.NameTooLong, shmkit.InvalidArgument)):
        seg.queue("q" * 100, elem_len=8, create=True)
    with pytest.raises(shmkit.NotFound):
        seg.ring("missing", "consumer")
    with pytest.raises(shmkit.NotFound):
        seg.stat("missing")
    with pytest.raises(shmkit.NotFound):
        seg.remove("missing")
    with pytest.raises(ValueError):
        seg.ring("r", "sideways", create=True)


def test_wrong_kind_or_type_is_type_mismatch(seg):
    seg.queue("q", elem_len=8, cap=8, create=True)
    with pytest.raises(shmkit.TypeMismatch):
        seg.ring("q", "consumer")
    with pytest.raises(shmkit.TypeMismatch):
        seg.map("q", key_len=8, val_len=8)
    with pytest.raises(shmkit.TypeMismatch):
        seg.queue("q", elem_len=16)
    seg.array("a", dtype=np.uint32, length=4, create=True)
    with pytest.raises(shmkit.TypeMismatch):
        seg.array("a", dtype=np.float32)   # same size, other type id
    with pytest.raises(shmkit.TypeMismatch):
        seg.array("a", dtype=np.uint64)
    with pytest.raises(shmkit.TypeMismatch):
        seg.array("q")                     # a queue, opened as an array
    a16 = seg.array("s", dtype="u2", length=2, create=True)
    with pytest.raises(shmkit.TypeMismatch):
        a16.load(0)                        # atomics need 4 or 8 bytes


def test_closed_handles_raise_not_crash(seg):
    r = seg.ring("r", "producer", create=True)
    r.close()
    r.close()                              # twice is fine
    with pytest.raises(ValueError):
        r.write(b"x")
    q = seg.queue("q", elem_len=8, create=True)
    a = seg.array("a", dtype="u4", length=3, create=True)
    assert len(a) == 3
    seg.close()                            # closes q and a too
    assert q.closed and a.closed
    with pytest.raises(ValueError):
        q.push(b"12345678")
    with pytest.raises(ValueError):
        seg.info()
    with pytest.raises(ValueError):
        len(a)                             # a call, even if cached
    with pytest.raises(ValueError):
        a.numpy()
    with pytest.raises(ValueError):
        with seg:
            pass
    assert a.length == 3                   # attributes stay readable
    seg.unlink()       # by name: documented to work after close() too
    assert not os.path.exists("/dev/shm/" + seg.name)


def test_timeouts_are_seconds():
    assert shmkit.timeout_ns(None) == -1
    assert shmkit.timeout_ns(0) == 0
    assert shmkit.timeout_ns(1.5) == 1500000000
    assert shmkit.timeout_ns(1e-12) == 1       # not a "try"
    assert shmkit.timeout_ns(float("inf")) == -1
    assert shmkit.timeout_ns(np.float32(0.5)) == 500000000
    # 2**63 ns and more (about 292 years) is forever, as infinity is: no
    # OverflowError from the float product or an int too large for a float
    for huge in (1e300, 10**400, 2**63 / 1e9, 10**10, np.float64(1e300),
                 fractions.Fraction(10**400)):
        assert shmkit.timeout_ns(huge) == -1, huge
    assert shmkit.timeout_ns(9e9) == 9 * 10**18      # still below 2**63


def test_huge_timeouts_wait(seg):
    s = seg.sem("s", create=True)
    s.post(1)
    s.wait(timeout=1e300)           # was OverflowError before the call
    s.post(1)
    assert s.acquire(timeout=10**400)
    r = seg.ring("r", "producer", create=True, cap=256)
    c = seg.ring("r", "consumer")
    r.write(b"x", timeout=1e300)
    assert c.read(timeout=10**400) == b"x"
    with shmkit.Segment(seg.name, open_timeout=1e300) as again:
        assert again.info().name == seg.name
    for bad in (-1, -1e-9, float("nan")):
        with pytest.raises(ValueError):
            shmkit.timeout_ns(bad)
    for bad in ("1", True, b"1", [1]):
        with pytest.raises(TypeError, match="timeout"):
            shmkit.timeout_ns(bad)


def plain_value_error(fn):
    """fn() raises ValueError from the binding's own check: not an
    InvalidArgument or MsgSize (ShkErrors that are also ValueErrors) from
    the library getting a value that ctypes wrapped."""
    with pytest.raises(ValueError) as ei:
        fn()
    assert not isinstance(ei.value, shmkit.ShkError), ei.value
    return str(ei.value)


def test_out_of_range_integers_are_value_errors(name):
    # each would have been wrapped by ctypes into the options struct: a
    # default 4 MiB segment, 4 registry entries, mode 0600, another key
    for kw in (dict(size=1 << 70), dict(size=-1),
               dict(max_objects=(1 << 32) | 4), dict(mode=1 << 32),
               dict(mode=0o1000), dict(mode=-1), dict(open_timeout=-1),
               dict(backend="sysv", sysv_key=1 << 40)):
        msg = plain_value_error(lambda: shmkit.Segment(name, create=True,
                                                       **kw))
        assert list(kw)[-1] in msg, (kw, msg)
        assert not os.path.exists("/dev/shm/" + name), kw
    with shmkit.Segment(name, create=True, size=1 << 20,
                        mode=0o640) as seg:
        assert seg.info().mode & 0o777 == 0o640
        plain_value_error(lambda: seg.alloc(-1))
        plain_value_error(lambda: seg.alloc(1 << 64))
        plain_value_error(lambda: seg.free(-16))
        plain_value_error(lambda: seg.blob("b", size=-1, create=True))
        r = seg.ring("r", "producer", create=True)
        plain_value_error(lambda: r.reserve(-1))
        plain_value_error(lambda: seg.ring("r2", "producer", create=True,
                                           cap=1 << 64))
        plain_value_error(lambda: seg.queue("q", elem_len=(1 << 32) | 8,
                                            cap=4, create=True))
        plain_value_error(lambda: seg.map("m", key_len=-8, val_len=8,
                                          cap=16, create=True))
        plain_value_error(lambda: seg.pool("p", block_len=64, cap=-1,
                                           create=True))
        plain_value_error(lambda: seg.bcast("b2", "writer", create=True,
                                            max_readers=1 << 32))
        plain_value_error(lambda: seg.bcast("b2", "writer", create=True,
                                            reader_timeout=-1))
        s = seg.sem("s", create=True)
        plain_value_error(lambda: s.post(-1))
        plain_value_error(lambda: s.post(1 << 32))
        plain_value_error(lambda: seg.sem("s2", create=True, value=-1))
        plain_value_error(lambda: seg.latch("l", count=-2, create=True))
        with pytest.raises(ValueError):
            s.acquire(timeout=-5)   # as threading: only -1 is "forever"
        assert s.value == 0
        assert sorted(seg.names()) == ["r", "s"]   # nothing else created
    with shmkit.Chan("shm://%s/c" % name, "a") as c:
        plain_value_error(lambda: c.loan(-1))
    with pytest.raises(ValueError):
        shmkit.Chan("shm://%s/c2" % name, "sub", max_subs=(1 << 32) | 1)


def test_wrong_argument_types_are_clear_type_errors(seg, name):
    r = seg.ring("r", "consumer", create=True)
    cv = seg.cond("cv", create=True)
    a = seg.array("a", dtype="u4", length=2, create=True)
    s = seg.sem("s", create=True)
    cases = [
        (lambda: shmkit.Chan(5, "a"), "addr"),
        (lambda: cv.wait("notamutex"), "mutex"),
        (lambda: r.read(timeout="1"), "timeout"),
        (lambda: shmkit.Segment.from_fd("3"), "fd"),
        (lambda: shmkit.Segment(name + "x", create=True, mode="0600"),
         "mode"),
        (lambda: shmkit.Segment(name + "x", create=True, mode=True), "mode"),
        (lambda: shmkit.Segment(name + "x", create=True, size="1048576"),
         "size"),
        (lambda: seg.alloc("64"), "nbytes"),
        (lambda: seg.ring("r2", "producer", create=True, cap="4096"), "cap"),
        (lambda: s.post("1"), "n"),
        (lambda: a.store(0, 1.5), "value"),
        (lambda: a.load("0"), "index"),
        (lambda: shmkit.Segment(12345), "name"),
        (lambda: seg.map("m", key_len=4, val_len=4, cap=8,
                         create=True).get(1234), "key"),
        (lambda: r.read_into(5), "buffer"),
    ]
    try:
        for fn, what in cases:
            with pytest.raises(TypeError, match=r"\b%s\b" % what):
                fn()
        assert not os.path.exists("/dev/shm/" + name + "x")
    finally:
        shmkit.unlink(name + "x", missing_ok=True)
    assert sorted(seg.names()) == ["a", "cv", "m", "r", "s"]


@pytest.mark.parametrize("bad", [False, 0.0, "", b"", []])
def test_falsy_non_integers_are_type_errors(seg, bad):
    """An optional integer argument that is falsy but not an integer
    (False, 0.0, "", ...) is TypeError, as a truthy one is; before,
    `x or 0` turned it into the default 0.  None still means the
    default."""
    cases = [
        ("queue", lambda n, v: seg.queue(n, elem_len=8, cap=v, create=True)),
        ("queue-elem", lambda n, v: seg.queue(n, elem_len=v, create=True)),
        ("queue-type", lambda n, v: seg.queue(n, elem_len=8, type_id=v,
                                              create=True)),
        ("stack", lambda n, v: seg.stack(n, elem_len=8, cap=v, create=True)),
        ("pool-block", lambda n, v: seg.pool(n, block_len=v, cap=4,
                                             create=True)),
        ("pool-cap", lambda n, v: seg.pool(n, block_len=64, cap=v,
                                           create=True)),
        ("map-key", lambda n, v: seg.map(n, key_len=v, val_len=8, cap=8,
                                         create=True)),
        ("map-val", lambda n, v: seg.map(n, key_len=8, val_len=v, cap=8,
                                         create=True)),
        ("map-cap", lambda n, v: seg.map(n, key_len=8, val_len=8, cap=v,
                                         create=True)),
        ("sem", lambda n, v: seg.sem(n, create=True, max=v)),
        ("barrier", lambda n, v: seg.barrier(n, parties=v, create=True)),
        ("latch", lambda n, v: seg.latch(n, count=v, create=True)),
    ]
    for what, make in cases:
        with pytest.raises(TypeError):
            make(what, bad)
            raise AssertionError("%s accepted %r" % (what, bad))
    seg.queue("ok", elem_len=8, cap=None, create=True).close()
