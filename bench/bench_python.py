#!/usr/bin/python3
"""bench_python.py - shmkit's Python binding beside the standard library's
multiprocessing, measured in the same run (docs/benchmarks.md,
"bench_python: the Python binding beside multiprocessing").

Every shmkit figure stands beside a multiprocessing baseline measured in
the same rounds, as a ratio.  Groups (all by default, or the ones named on
the command line):

  stream   records of 64 B, 4 KiB and 64 KiB from a producer process to a
           consumer process: shmkit Ring write/read (copies), Ring
           reserve/commit + peek/release (zero-copy), pair Chan
           send/recv_bytes (copies), Chan loan/recv (zero-copy) and Queue
           push/pop (fixed-size elements), each beside
           multiprocessing.Pipe send_bytes/recv_bytes and
           multiprocessing.Queue put/get.
  latency  one-way latency (half a ping-pong round trip) of 64 B records,
           p50 and p99: Ring and pair Chan, blocking calls, beside Pipe
           and Queue.
  array    a 4 MiB uint64 NumPy array written by one process and summed by
           the other, handed over by a token through a Pipe: shmkit
           Array.numpy() beside multiprocessing.shared_memory.SharedMemory
           + np.ndarray over its buffer (about equal by design: both are
           plain memory; it shows the binding adds no copy).
  lock     an uncontended process-shared lock, acquire+release: shmkit
           Mutex beside multiprocessing.Lock.

Method (as the C programs, bench/bench.h): every party is a separate
process (multiprocessing, 'fork' context) pinned to its own CPU where there
are enough; each run forks its parties afresh, which open their own
handles, run an unmeasured warm-up, meet at a barrier and run the measured
part; the cases of a group alternate round by round and each figure is the
median over SHK_BENCH_RUNS rounds (default 5).  Every record carries its
sequence number in its first 8 bytes and the receiver checks it (and the
length); a wrong one fails the run.  SHK_BENCH_SCALE multiplies every
count.  Rows go to stdout and, when SHK_BENCH_OUT names a file, are
appended to it in the C programs' format (bench_row in bench/bench.h).
Segments are named shk-bench-py-PID-... and removed on every path the
process survives.  Exit status: 0 when every case ran and checked out.

Run it from the repository root after `make`:
    PYTHONPATH=python /usr/bin/python3 bench/bench_python.py [GROUP ...]
"""

import gc
import importlib.util
import itertools
import multiprocessing as mp
import multiprocessing.connection
import os
import platform
import signal
import struct
import sys
import threading
import time
import traceback
from multiprocessing import resource_tracker, shared_memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if importlib.util.find_spec("shmkit") is None:
    sys.path.insert(0, os.path.join(ROOT, "python"))

import numpy as np  # noqa: E402

import shmkit  # noqa: E402

CTX = mp.get_context("fork")
SEQ = struct.Struct("<Q")
MIB = 1 << 20
RING_CAP = MIB  # the stream rings' data bytes (bench_ring's, too)
INFLIGHT = MIB  # bytes a bounded queue holds: the same as the ring
ARRAY_LEN = 4 * MIB // 8  # uint64 elements of the array case (4 MiB)
BARRIER_S = 120  # a party waits this long at the barrier, then fails
RUN_TIMEOUT_S = 300  # one run (setup, warm-up, measured part)
PREFIX = "shk-bench-py-%d-" % os.getpid()
GROUP = "python"

# Base counts of one measured run, before SHK_BENCH_SCALE.  Figures are
# rates or per-call times, so the counts of different cases need not match.
STREAM_N = {64: 100000, 4096: 40000, 65536: 4000}
LATENCY_N = 5000  # round trips
ARRAY_N = 100  # array hand-overs
LOCK_N = 300000  # acquire+release pairs


class BenchError(Exception):
    pass


class Terminated(BaseException):
    pass


def scale():
    try:
        f = float(os.environ.get("SHK_BENCH_SCALE", "1"))
    except ValueError:
        f = 1.0
    return f if f > 0 else 1.0


def scaled(n):
    """bench_scale(): n times SHK_BENCH_SCALE, at least 1."""
    return max(1, int(n * scale()))


def runs():
    """bench_runs(): SHK_BENCH_RUNS (default 5), within 1 .. 99."""
    try:
        r = int(os.environ.get("SHK_BENCH_RUNS", "5"))
    except ValueError:
        r = 0
    return min(max(r, 1), 99)


def quantile(v, q):
    """bench_quantile(): the q-quantile of v (0.5: the median)."""
    if not v:
        return 0.0
    v = sorted(v)
    i = int(q * (len(v) - 1) + 0.5)
    return v[min(i, len(v) - 1)]


def median(v):
    """bench_median(): the middle value, or the mean of the two middle
    values when len(v) is even."""
    if not v:
        return 0.0
    v = sorted(v)
    h = len(v) // 2
    return v[h] if len(v) % 2 else (v[h - 1] + v[h]) / 2


def size_str(n):
    return "%d KiB" % (n // 1024) if n >= 1024 and n % 1024 == 0 \
        else "%d B" % n


def row(name, value, unit, base_name, base_value):
    """bench_row(): one line on stdout and one Markdown row appended to
    $SHK_BENCH_OUT, in exactly the C programs' format."""
    ratio = value / base_value if base_value != 0 else 0.0
    rs = ("%.2g" if ratio != 0 and ratio < 0.1 else "%.2f") % ratio
    print("%-10s %-34s %12.2f %-8s | %-28s %12.2f | x%s"
          % (GROUP, name, value, unit, base_name, base_value, rs),
          flush=True)
    path = os.environ.get("SHK_BENCH_OUT")
    if path:
        with open(path, "a") as f:
            f.write("| %s | %s | %.2f %s | %s | %.2f | %s |\n"
                    % (GROUP, name, value, unit, base_name, base_value, rs))


def rate_row(name, size, msgs_per_s, base_name, base_msgs_per_s):
    """Throughput of records of `size` bytes: kmsg/s below 4 KiB (Python
    rates are thousands per second, too small for Mmsg/s's two decimals),
    MB/s (10^6 bytes) from 4 KiB up, as bench_rate_row."""
    if size >= 4096:
        row(name, msgs_per_s * size / 1e6, "MB/s", base_name,
            base_msgs_per_s * size / 1e6)
    else:
        row(name, msgs_per_s / 1e3, "kmsg/s", base_name,
            base_msgs_per_s / 1e3)


# ------------------------------------------------------------ segments

_made = []  # every segment name this process made (the cleanup's list)
_seq = itertools.count()


def seg_name(tag):
    name = "%s%s-%d" % (PREFIX, tag, next(_seq))
    _made.append(name)
    return name


def unlink_all():
    for name in _made:
        try:
            shmkit.unlink(name, missing_ok=True)
        except shmkit.ShkError as e:
            print("bench_python: unlink %s: %s" % (name, e), file=sys.stderr)
    _made.clear()


def stop_tracker():
    """Ends the resource tracker SharedMemory started, and reaps it: left
    to itself it exits after this process, and waits for init to reap it."""
    t = getattr(resource_tracker, "_resource_tracker", None)
    if t is not None and getattr(t, "_pid", None) is not None and \
            hasattr(t, "_stop"):
        t._stop()


def prefault_chan(chan):
    """Chan.prefault(): shk_seg_prefault on the channel's own segment, as
    bench_chan does and as the other shmkit parties do with
    Segment.prefault()."""
    try:
        chan.prefault()
    except shmkit.ShkError as e:
        raise BenchError("prefault of %s: %s" % (chan.addr, e))


def bad(case, i, got):
    if isinstance(got, (bytes, bytearray, memoryview)):
        got = "%d bytes, number %s" % (
            len(got), SEQ.unpack_from(got)[0] if len(got) >= 8 else "-")
    raise BenchError("%s: record %d: got %s" % (case.label, i, got))


# ------------------------------------------------------------ cases
#
# A case runs in `parties` processes.  prepare() runs in the parent before
# the fork (it makes what the parties share: pipes, queues, a segment with
# its objects, closing its own handles); open(idx) runs in party idx after
# the fork (shmkit handles are per process) and returns its state;
# run(idx, st, first, n) does records first .. first+n-1 and returns what
# the party reports (latency quantiles); close(idx, st) ends the party's
# handles; cleanup() runs in the parent after the parties ended.

class Case:
    parties = 2
    label = ""

    def prepare(self):
        pass

    def open(self, idx):
        return None

    def run(self, idx, st, first, n):
        return None

    def close(self, idx, st):
        pass

    def cleanup(self):
        pass


class StreamCase(Case):
    """Party 0 produces records of self.size bytes, party 1 consumes and
    checks them; the figure is records per second over the run's span."""

    fault = False  # SHK_BENCH_PY_FAULT: the producer skips a number

    def __init__(self, size):
        self.size = size
        self.label = "%s %s" % (self.what, size_str(size))

    def run(self, idx, st, first, n):
        if idx == 0:
            self.produce(st, first + (1 if self.fault and first else 0), n)
        else:
            self.consume(st, first, n)


class PipeStream(StreamCase):
    what = "mp.Pipe send/recv_bytes"

    def prepare(self):
        # duplex=False: an os.pipe() (the default Pipe() is a socketpair)
        self.r, self.w = CTX.Pipe(duplex=False)

    def produce(self, st, first, n):
        buf = bytearray(self.size)
        pack, send = SEQ.pack_into, self.w.send_bytes
        for i in range(first, first + n):
            pack(buf, 0, i)
            send(buf)

    def consume(self, st, first, n):
        recv, unpack, size = self.r.recv_bytes, SEQ.unpack_from, self.size
        for i in range(first, first + n):
            d = recv()
            if len(d) != size or unpack(d)[0] != i:
                bad(self, i, d)

    def cleanup(self):
        self.r.close()
        self.w.close()


class QueueStream(StreamCase):
    what = "mp.Queue put/get"

    def prepare(self):
        # bounded to the ring's bytes: an unbounded Queue lets the producer
        # run ahead by the whole run (all of it in its feeder's memory)
        self.q = CTX.Queue(maxsize=max(16, INFLIGHT // self.size))

    def produce(self, st, first, n):
        # a Queue pickles an object later, in its feeder thread: it must
        # not change after put, so each record is a new bytes object
        pad, pack, put = bytes(self.size - 8), SEQ.pack, self.q.put
        for i in range(first, first + n):
            put(pack(i) + pad)

    def consume(self, st, first, n):
        get, unpack, size = self.q.get, SEQ.unpack_from, self.size
        for i in range(first, first + n):
            d = get()
            if len(d) != size or unpack(d)[0] != i:
                bad(self, i, d)

    def cleanup(self):
        self.q.close()


class SegCase(Case):
    """A case whose parties open the segment self.seg made by prepare()."""

    def open_seg(self):
        s = shmkit.Segment(self.seg)
        s.prefault()  # no first-touch page faults in the figures
        return s

    def close(self, idx, st):
        st["seg"].close()

    def cleanup(self):
        shmkit.unlink(self.seg, missing_ok=True)


class RingStream(SegCase, StreamCase):
    def __init__(self, size, zero_copy):
        self.zero_copy = zero_copy
        self.what = "Ring reserve/peek (zero-copy)" if zero_copy \
            else "Ring write/read"
        StreamCase.__init__(self, size)

    def prepare(self):
        self.seg = seg_name("ring")
        with shmkit.Segment(self.seg, create=True, excl=True,
                            size=RING_CAP + 3 * MIB) as s:
            s.ring("s", "producer", create=True, cap=RING_CAP).close()

    def open(self, idx):
        s = self.open_seg()
        return {"seg": s, "ring": s.ring(
            "s", "producer" if idx == 0 else "consumer")}

    def produce(self, st, first, n):
        w, pack, size = st["ring"], SEQ.pack_into, self.size
        if self.zero_copy:
            # the record is made in place: only its number is written
            reserve, commit = w.reserve, w.commit
            for i in range(first, first + n):
                pack(reserve(size), 0, i)
                commit()
        else:
            buf, write = bytearray(size), w.write
            for i in range(first, first + n):
                pack(buf, 0, i)
                write(buf)

    def consume(self, st, first, n):
        r, unpack, size = st["ring"], SEQ.unpack_from, self.size
        if self.zero_copy:
            peek, release = r.peek, r.release
            for i in range(first, first + n):
                mv = peek()
                if mv.nbytes != size or unpack(mv)[0] != i:
                    bad(self, i, mv)
                release()
        else:
            read = r.read
            for i in range(first, first + n):
                d = read()
                if len(d) != size or unpack(d)[0] != i:
                    bad(self, i, d)


class ChanStream(StreamCase):
    """A pair channel with the defaults (64 KiB rings, messages up to 2 KiB
    inline, larger ones and loans in heap blocks), in a segment that holds
    the blocks the ring can have in flight (24 bytes of ring each: 2730 of
    4 KiB), and with a ring of 8 KiB for 64 KiB messages (341 blocks)."""

    SEG_SIZE = {64: 4 * MIB, 4096: 32 * MIB, 65536: 64 * MIB}

    def __init__(self, size, loan):
        self.loan = loan
        self.what = "Chan loan/recv (zero-copy)" if loan \
            else "Chan send/recv_bytes"
        StreamCase.__init__(self, size)

    def prepare(self):
        self.seg = seg_name("chan")
        self.addr = "shm://%s/c" % self.seg
        cap = 65536 if self.size <= 4096 else 8192
        shmkit.Chan(self.addr, "a", seg_size=self.SEG_SIZE[self.size],
                    cap=cap).close()

    def open(self, idx):
        c = shmkit.Chan(self.addr, "a" if idx == 0 else "b")
        prefault_chan(c)
        return {"chan": c}

    def close(self, idx, st):
        st["chan"].close()

    def cleanup(self):
        shmkit.unlink(self.seg, missing_ok=True)

    def produce(self, st, first, n):
        c, pack, size = st["chan"], SEQ.pack_into, self.size
        if self.loan:
            loan = c.loan
            for i in range(first, first + n):
                m = loan(size)
                pack(m.data, 0, i)
                m.send()
        else:
            buf, send = bytearray(size), c.send
            for i in range(first, first + n):
                pack(buf, 0, i)
                send(buf)

    def consume(self, st, first, n):
        c, unpack, size = st["chan"], SEQ.unpack_from, self.size
        if self.loan:
            recv = c.recv
            for i in range(first, first + n):
                m = recv()
                d = m.data
                if d.nbytes != size or unpack(d)[0] != i:
                    bad(self, i, d)
                m.release()
        else:
            recv = c.recv_bytes
            for i in range(first, first + n):
                d = recv()
                if len(d) != size or unpack(d)[0] != i:
                    bad(self, i, d)


class ShkQueueStream(SegCase, StreamCase):
    what = "Queue push/pop"

    def prepare(self):
        self.seg = seg_name("queue")
        with shmkit.Segment(self.seg, create=True, excl=True,
                            size=INFLIGHT + 3 * MIB) as s:
            s.queue("q", elem_len=self.size, cap=INFLIGHT // self.size,
                    create=True).close()

    def open(self, idx):
        s = self.open_seg()
        return {"seg": s, "q": s.queue("q")}

    def produce(self, st, first, n):
        buf, pack, push = bytearray(self.size), SEQ.pack_into, st["q"].push
        for i in range(first, first + n):
            pack(buf, 0, i)
            push(buf)

    def consume(self, st, first, n):
        pop, unpack, size = st["q"].pop, SEQ.unpack_from, self.size
        for i in range(first, first + n):
            d = pop()
            if len(d) != size or unpack(d)[0] != i:
                bad(self, i, d)


class PingCase(Case):
    """Party 0 (pinger) sends record i and waits for its echo, one clock
    read per round trip; party 1 (ponger) checks and echoes it.  Returns
    the run's one-way p50 and p99 (half a round trip), in ns."""

    size = 64

    def run(self, idx, st, first, n):
        if idx == 1:
            self.pong(st, first, n)
            return None
        lat = [0] * n
        now = time.monotonic_ns
        t0 = now()
        for k, i in enumerate(range(first, first + n)):
            d = self.ping(st, i)
            t1 = now()
            if len(d) != self.size or SEQ.unpack_from(d)[0] != i:
                bad(self, i, d)
            lat[k] = t1 - t0
            t0 = t1
        return quantile(lat, 0.5) / 2, quantile(lat, 0.99) / 2


class PipePing(PingCase):
    label = "mp.Pipe ping-pong"

    def prepare(self):
        self.pings = CTX.Pipe(duplex=False)
        self.pongs = CTX.Pipe(duplex=False)

    def open(self, idx):
        return {"buf": bytearray(self.size)}

    def ping(self, st, i):
        buf = st["buf"]
        SEQ.pack_into(buf, 0, i)
        self.pings[1].send_bytes(buf)
        return self.pongs[0].recv_bytes()

    def pong(self, st, first, n):
        recv, send = self.pings[0].recv_bytes, self.pongs[1].send_bytes
        for i in range(first, first + n):
            d = recv()
            if len(d) != self.size or SEQ.unpack_from(d)[0] != i:
                bad(self, i, d)
            send(d)

    def cleanup(self):
        for c in self.pings + self.pongs:
            c.close()


class QueuePing(PingCase):
    label = "mp.Queue ping-pong"

    def prepare(self):
        self.pings, self.pongs = CTX.Queue(), CTX.Queue()
        self.pad = bytes(self.size - 8)

    def ping(self, st, i):
        self.pings.put(SEQ.pack(i) + self.pad)
        return self.pongs.get()

    def pong(self, st, first, n):
        get, put = self.pings.get, self.pongs.put
        for i in range(first, first + n):
            d = get()
            if len(d) != self.size or SEQ.unpack_from(d)[0] != i:
                bad(self, i, d)
            put(d)

    def cleanup(self):
        self.pings.close()
        self.pongs.close()


class RingPing(SegCase, PingCase):
    label = "Ring ping-pong"

    def prepare(self):
        self.seg = seg_name("ringpp")
        with shmkit.Segment(self.seg, create=True, excl=True,
                            size=2 * RING_CAP + 2 * MIB) as s:
            for name in ("ping", "pong"):
                s.ring(name, "producer", create=True, cap=RING_CAP).close()

    def open(self, idx):
        s = self.open_seg()
        mine, theirs = ("ping", "pong") if idx == 0 else ("pong", "ping")
        return {"seg": s, "w": s.ring(mine, "producer"),
                "r": s.ring(theirs, "consumer"), "buf": bytearray(self.size)}

    def ping(self, st, i):
        buf = st["buf"]
        SEQ.pack_into(buf, 0, i)
        st["w"].write(buf)
        return st["r"].read()

    def pong(self, st, first, n):
        read, write = st["r"].read, st["w"].write
        for i in range(first, first + n):
            d = read()
            if len(d) != self.size or SEQ.unpack_from(d)[0] != i:
                bad(self, i, d)
            write(d)


class ChanPing(PingCase):
    label = "Chan ping-pong"

    def prepare(self):
        self.seg = seg_name("chanpp")
        self.addr = "shm://%s/c" % self.seg
        shmkit.Chan(self.addr, "a").close()

    def open(self, idx):
        c = shmkit.Chan(self.addr, "a" if idx == 0 else "b")
        prefault_chan(c)
        return {"chan": c, "buf": bytearray(self.size)}

    def close(self, idx, st):
        st["chan"].close()

    def cleanup(self):
        shmkit.unlink(self.seg, missing_ok=True)

    def ping(self, st, i):
        buf = st["buf"]
        SEQ.pack_into(buf, 0, i)
        st["chan"].send(buf)
        return st["chan"].recv_bytes()

    def pong(self, st, first, n):
        recv, send = st["chan"].recv_bytes, st["chan"].send
        for i in range(first, first + n):
            d = recv()
            if len(d) != self.size or SEQ.unpack_from(d)[0] != i:
                bad(self, i, d)
            send(d)


class ArrayCase(Case):
    """Party 0 copies a source array into the shared array and stamps
    element 0 with the hand-over number; a token through a Pipe hands it
    to party 1, which sums the whole array (uint64, wrapping), checks the
    sum and hands it back.  Both sides use the same tokens; only where the
    array lives differs."""

    def prepare(self):
        self.ready = CTX.Pipe(duplex=False)
        self.free = CTX.Pipe(duplex=False)
        self.make()

    def open(self, idx):
        st = self.attach()
        x = st["x"]
        if x.dtype != np.uint64 or x.size != ARRAY_LEN:
            raise BenchError("%s: a view of %s x %d" % (self.label, x.dtype,
                                                       x.size))
        src = np.arange(ARRAY_LEN, dtype=np.uint64) * np.uint64(
            0x9E3779B97F4A7C15)
        st["src"] = src
        st["base"] = (int(src.sum()) - int(src[0])) & (2**64 - 1)
        return st

    def run(self, idx, st, first, n):
        x = st["x"]
        if idx == 0:
            src, send, recv = st["src"], self.ready[1].send_bytes, \
                self.free[0].recv_bytes
            for k in range(first, first + n):
                np.copyto(x, src)
                x[0] = k
                send(SEQ.pack(k))
                recv()
        else:
            recv, send, base = self.ready[0].recv_bytes, \
                self.free[1].send_bytes, st["base"]
            for k in range(first, first + n):
                d = recv()
                if SEQ.unpack_from(d)[0] != k:
                    bad(self, k, d)
                s = int(x.sum())
                if s != (base + k) & (2**64 - 1):
                    bad(self, k, "checksum %#x" % s)
                send(d)

    def cleanup(self):
        for c in self.ready + self.free:
            c.close()
        self.unmake()


class ShkArray(ArrayCase):
    label = "Array.numpy() write+sum 4 MiB"

    def make(self):
        self.seg = seg_name("array")
        with shmkit.Segment(self.seg, create=True, excl=True,
                            size=ARRAY_LEN * 8 + 2 * MIB) as s:
            s.array("x", dtype=np.uint64, length=ARRAY_LEN,
                    create=True).close()

    def attach(self):
        s = shmkit.Segment(self.seg)
        s.prefault()
        a = s.array("x")
        x = a.numpy()
        if x.ctypes.data != a.address:  # the shared memory, not a copy
            raise BenchError("Array.numpy() is not over the array")
        return {"seg": s, "a": a, "x": x}

    def close(self, idx, st):
        del st["x"]
        st["seg"].close()

    def unmake(self):
        shmkit.unlink(self.seg, missing_ok=True)


class StdArray(ArrayCase):
    label = "SharedMemory ndarray 4 MiB"

    def make(self):
        self.name = seg_name("stdshm")
        self.shm = shared_memory.SharedMemory(self.name, create=True,
                                              size=ARRAY_LEN * 8)

    def attach(self):
        # (Python < 3.13 registers an attach with the resource tracker as
        # it does a create; forked parties share the parent's tracker,
        # which keeps a set of names: the parent's unlink unregisters it)
        shm = shared_memory.SharedMemory(self.name)
        x = np.ndarray(ARRAY_LEN, dtype=np.uint64, buffer=shm.buf)
        return {"shm": shm, "x": x}

    def close(self, idx, st):
        del st["x"]
        st["shm"].close()

    def unmake(self):
        self.shm.close()
        self.shm.unlink()


class LockCase(Case):
    """One process: n acquire+release pairs of an uncontended lock; the
    figure is ns per pair (the span over n)."""

    parties = 1

    def run(self, idx, st, first, n):
        lock = st["lock"]
        if self.with_block:
            for _ in range(n):
                with lock:
                    pass
        else:
            acquire, release = lock.acquire, lock.release
            for _ in range(n):
                acquire()
                release()


class MpLock(LockCase):
    def __init__(self, with_block):
        self.with_block = with_block
        self.label = "mp.Lock " + ("with-block" if with_block
                                   else "acquire+release")

    def prepare(self):
        self.lock = CTX.Lock()

    def open(self, idx):
        return {"lock": self.lock}


class ShkMutex(SegCase, LockCase):
    def __init__(self, with_block):
        self.with_block = with_block
        self.label = "Mutex " + ("with-block" if with_block
                                 else "acquire+release")

    def prepare(self):
        self.seg = seg_name("mutex")
        with shmkit.Segment(self.seg, create=True, excl=True,
                            size=MIB) as s:
            s.mutex("m", create=True).close()

    def open(self, idx):
        s = self.open_seg()
        return {"seg": s, "lock": s.mutex("m")}


# ------------------------------------------------------------ harness

def cpus():
    return sorted(os.sched_getaffinity(0))


# Held blocked in the parent from before a party's fork until the party
# is in run_once's list: a stop signal in between would leave a party the
# cleanup does not know, which then waits at the barrier with our output
# pipes open (test_bench's SIGTERM test timed out that way).
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}


def _party(case, idx, cpu, n, warm, barrier, out):
    """One party of one run, in a forked process."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent cleans up
    # inherited blocked from run_once: a stop that came meanwhile ends us
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    try:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass  # best effort, as bench_pin
        st = case.open(idx)
        if warm:
            case.run(idx, st, 0, warm)
        gc.collect()
        barrier.wait(BARRIER_S)
        gc.disable()
        t0 = time.monotonic_ns()
        extra = case.run(idx, st, warm, n)
        t1 = time.monotonic_ns()
        gc.enable()
        case.close(idx, st)
        out.send(("ok", t0, t1, extra))
    except BaseException as e:
        msg = str(e) if isinstance(e, BenchError) else \
            "%s party %d: %s" % (case.label, idx, traceback.format_exc())
        # a broken barrier: another party failed, and says why
        kind = "broken" if isinstance(e, threading.BrokenBarrierError) \
            else "error"
        try:
            barrier.abort()
            out.send((kind, msg))
        except Exception:
            pass
        sys.exit(1)


def run_once(case, n, warm):
    """Forks the case's parties for one run (warm-up, then n measured);
    returns (span_ns, what party 0 reported).  BenchError on a failure."""
    case.prepare()  # what it made before a failure: unlink_all removes
    procs, pipes = [], []
    try:
        k = case.parties
        barrier = CTX.Barrier(k)
        pipes = [CTX.Pipe(duplex=False) for _ in range(k)]
        cs = cpus()
        # the parties' gc.collect() then skips the objects inherited:
        # touching them would copy every page of the parent's heap
        gc.freeze()
        for i in range(k):
            p = CTX.Process(target=_party, name="%s/%d" % (case.label, i),
                            args=(case, i, cs[i % len(cs)], n, warm,
                                  barrier, pipes[i][1]))
            held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                p.start()
                procs.append(p)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
        for _, w in pipes:
            w.close()
        res, broken = {}, None
        waiting = {pipes[i][0]: i for i in range(k)}
        ended = {p.sentinel: i for i, p in enumerate(procs)}
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError("%s: no result in %d s"
                                 % (case.label, RUN_TIMEOUT_S))
            for r in mp.connection.wait(list(waiting) + list(ended), left):
                if r in ended:
                    i = ended.pop(r)
                    c = pipes[i][0]
                    if c in waiting and not c.poll():
                        raise BenchError("%s: party %d ended (exit %s) "
                                         "without a result" % (
                                             case.label, i,
                                             procs[i].exitcode))
                    continue
                i = waiting.pop(r)
                try:
                    msg = r.recv()
                except EOFError:
                    raise BenchError("%s: party %d ended without a result"
                                     % (case.label, i)) from None
                if msg[0] == "broken":
                    broken = msg[1]
                elif msg[0] != "ok":
                    raise BenchError(msg[1])
                else:
                    res[i] = msg[1:]
        if broken:
            raise BenchError(broken)
        for p in procs:
            p.join(RUN_TIMEOUT_S)
            if p.exitcode != 0:
                raise BenchError("%s: party %s exited with %s"
                                 % (case.label, p.name, p.exitcode))
        span = max(r[1] for r in res.values()) - \
            min(r[0] for r in res.values())
        return max(span, 1), res[0][2]
    finally:
        # a stop signal must not cut this short (a party left running,
        # a segment left): held until the end, then raised (a stop that
        # came meanwhile is in _stopped, see check_stopped)
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            for p in procs:
                if p.exitcode is None:
                    p.kill()
                p.join()
            for r, w in pipes:
                r.close()
                w.close()
            case.cleanup()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


def rounds(cases, n, warm):
    """Runs every case once per round, SHK_BENCH_RUNS rounds; returns a
    list per case of (span_ns, report) per round."""
    out = [[] for _ in cases]
    for _ in range(runs()):
        for j, c in enumerate(cases):
            out[j].append(run_once(c, n, warm))
            check_stopped()
    return out


def spread(label, values, fmt="%.2f"):
    if len(values) > 1:
        print("           spread %-34s %s .. %s" % (
            label, fmt % min(values), fmt % max(values)), flush=True)


# ------------------------------------------------------------ groups

def group_stream():
    for size in (64, 4096, 65536):
        bases = [PipeStream(size), QueueStream(size)]
        shk = [RingStream(size, False), RingStream(size, True),
               ChanStream(size, False), ChanStream(size, True),
               ShkQueueStream(size)]
        cases = bases + shk
        fault = os.environ.get("SHK_BENCH_PY_FAULT")
        for c in cases:
            c.fault = bool(fault) and fault in c.label
        n = scaled(STREAM_N[size])
        res = rounds(cases, n, max(1, n // 10))
        rate = {}
        for c, rs in zip(cases, res):
            v = [n * 1e9 / span for span, _ in rs]
            rate[c] = median(v)
            spread(c.label, [x / 1e3 for x in v])
        for c in shk:
            for b in bases:
                if getattr(c, "zero_copy", False) or \
                        getattr(c, "loan", False):
                    # the payload is not touched beyond its first 8
                    # bytes: a handover rate in kmsg/s at every size,
                    # not data moved in MB/s
                    row(c.label + ", payload untouched", rate[c] / 1e3,
                        "kmsg/s", b.label, rate[b] / 1e3)
                else:
                    rate_row(c.label, size, rate[c], b.label, rate[b])


def group_latency():
    bases = [PipePing(), QueuePing()]
    shk = [RingPing(), ChanPing()]
    cases = bases + shk
    n = scaled(LATENCY_N)
    res = rounds(cases, n, max(1, n // 4))
    q = {}
    for c, rs in zip(cases, res):
        p50 = [r[1][0] for r in rs]
        p99 = [r[1][1] for r in rs]
        q[c] = (median(p50), median(p99))
        spread(c.label + " p50", p50)
    for c in shk:
        for b in bases:
            row("%s 64 B one-way p50" % c.label, q[c][0], "ns",
                "%s p50" % b.label, q[b][0])
            row("%s 64 B one-way p99" % c.label, q[c][1], "ns",
                "%s p99" % b.label, q[b][1])


def group_array():
    base, shk = StdArray(), ShkArray()
    n = scaled(ARRAY_N)
    res = rounds([base, shk], n, max(1, n // 10))
    v = []
    for c, rs in zip((base, shk), res):
        mbs = [n * ARRAY_LEN * 8 * 1e3 / span for span, _ in rs]  # B/us
        spread(c.label, mbs)
        v.append(median(mbs))
    row(shk.label, v[1], "MB/s", base.label, v[0])


def group_lock():
    cases = [MpLock(False), MpLock(True), ShkMutex(False), ShkMutex(True)]
    n = scaled(LOCK_N)
    res = rounds(cases, n, max(1, n // 10))
    ns = []
    for c, rs in zip(cases, res):
        v = [span / n for span, _ in rs]
        spread(c.label, v)
        ns.append(median(v))
    row(cases[2].label, ns[2], "ns/op", cases[0].label, ns[0])
    row(cases[3].label, ns[3], "ns/op", cases[1].label, ns[1])


GROUPS = {"stream": group_stream, "latency": group_latency,
          "array": group_array, "lock": group_lock}


_stopped = []  # the stop signal, once one came


def _terminate(sig, frame):
    # once: a second signal must not cut the cleanup short
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, signal.SIG_IGN)
    _stopped.append(sig)
    raise Terminated("signal %d" % sig)


def check_stopped():
    """Raises Terminated again when a stop signal came but its exception
    was swallowed: raised inside a finaliser or __del__ (multiprocessing
    runs some), Python prints it as ignored and goes on."""
    if _stopped:
        raise Terminated("signal %d" % _stopped[0])


def main(argv):
    names = argv[1:] or list(GROUPS)
    unknown = [g for g in names if g not in GROUPS]
    if unknown:
        print("usage: bench_python.py [%s ...]" % "|".join(GROUPS),
              file=sys.stderr)
        return 2
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, _terminate)
    cs = cpus()
    print("# shmkit %s (%s) beside multiprocessing, Python %s, NumPy %s; "
          "%d parties' CPUs: %s; median of %d rounds, scale %g"
          % (shmkit.__version__, shmkit.lib_path, platform.python_version(),
             np.__version__, len(cs), ",".join(map(str, cs[:2])), runs(),
             scale()), flush=True)
    if len(cs) < 2:
        print("# one CPU: both parties share it; the figures mostly "
              "measure the scheduler", flush=True)
    t0 = time.monotonic()
    try:
        for g in names:
            GROUPS[g]()
            check_stopped()
    except BenchError as e:
        print("bench_python: %s" % e, file=sys.stderr)
        return 1
    except (Terminated, KeyboardInterrupt) as e:
        print("bench_python: stopped (%s)" % (e or "interrupt"),
              file=sys.stderr)
        return 1
    finally:
        unlink_all()
        stop_tracker()
    print("# bench_python: %.1f s" % (time.monotonic() - t0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
